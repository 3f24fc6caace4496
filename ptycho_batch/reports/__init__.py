"""Evidence from the journal alone: the artifact inventory and report.html, the policy decision, parity (seed-aware
statistics in stats.py), compare, SVG plots.

May import: executors (to refresh a run before reading it), node, runtimes, journal, campaign, util.
"""
