"""The live views: `watch` (rich dashboard or plain lines) and `logs`. Printing lives here and in cli.

May import: reports, executors, node, runtimes, journal, campaign, util.
"""
