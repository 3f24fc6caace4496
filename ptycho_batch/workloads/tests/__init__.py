"""Backend-side tests, run with a backend environment's python.

`python -m pytest --pyargs ptycho_batch.workloads.tests` (tests of a framework not installed there skip).
"""
