"""Backend-side tests, run with a backend environment's python (`python -m pytest --pyargs ptycho_batch.workloads.tests`)."""
