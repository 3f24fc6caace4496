"""Executors: where a run's jobs run (`local`: a detached run supervisor; `slurm`: submitit) and how every
reader refreshes a run's states from whoever carries it (`refresh`), cancels jobs, and settles scheduler outcomes.

May import: node, runtimes, journal, campaign, util.
"""
