"""The submit session: campaign to plan, cache decisions (run or reuse, and why), the run's journal, the executor.

May import: reports, executors, node, runtimes, journal, campaign, util.
"""
