"""The job runner: one job end to end, the same code under the local supervisor and on a SLURM node.

Owns the env firewall, process control, observe, triage and red/green notes, artifacts, provenance and the probe.
May import: runtimes, journal, campaign, util.
"""
