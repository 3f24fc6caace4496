"""The submit session: campaign to plan, cache decisions (run or reuse, and why), the run's journal, the executor;
and `gc` (old runs' workdirs).

May import: reports, executors, node, runtimes, journal, campaign, util.
"""
