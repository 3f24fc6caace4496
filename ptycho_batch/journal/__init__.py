"""The run store: the records of every run, their file layout, states and failure classes.

Owns `<out>/.ptybatch/<campaign>/<run>/` (plan.json, run.json, jobs/<slug>/state.json), the report-dir layout
(cli/, analysis/, red/, green/), the submit lock, the incremental reader every viewer uses, and finding a run.
May import: campaign, util.
"""
