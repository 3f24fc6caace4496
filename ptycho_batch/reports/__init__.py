"""Evidence from the journal alone: the artifact inventory, the policy decision, parity, compare, plots.

May import: executors (to refresh a run before reading it), node, runtimes, journal, campaign, util.
"""
