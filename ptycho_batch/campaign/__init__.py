"""Campaign files to plans: safe YAML with bounds and locations, the pydantic schema, templates, the plan.

Owns the campaign schema, `--set` overrides, matrix expansion, the DAG and cache-key arithmetic, user config,
and the `data:` checks and digests (data.py).
May import: util.
"""
