"""The environment firewall: a job's environment is built, never inherited.

empty + a small allowlist from the submitter + backend env + job env + the `pass_env` names. PYTHONPATH,
LD_LIBRARY_PATH, VIRTUAL_ENV, CONDA_*, XLA_FLAGS, TF_* and everything else stay out unless listed.
The effective environment is recorded with secret-looking values redacted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

ALLOWED_NAMES = frozenset({"PATH", "HOME", "USER", "LANG", "TZ", "TMPDIR", "TERM", "CUDA_VISIBLE_DEVICES"})
ALLOWED_PREFIXES = ("LC_", "SLURM_")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|CREDENTIAL", re.IGNORECASE)
REDACTED = "***redacted***"


def allowed(name: str) -> bool:
    return name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)


def build_env(submitter: Mapping[str, str], declared: Mapping[str, str], pass_env: list[str],
              pinned: Mapping[str, str] | None = None) -> dict[str, str]:
    """The job's environment: allowlisted submitter values, then declared env, pass_env, and pins.

    `pinned` holds what the executor decides per job (e.g. CUDA_VISIBLE_DEVICES for one GPU) and wins.
    """
    env = {k: v for k, v in submitter.items() if allowed(k)}
    env.update(declared)
    env.update({name: submitter[name] for name in pass_env if name in submitter})
    env.update(pinned or {})
    return env


def redact(env: Mapping[str, str]) -> dict[str, str]:
    return {k: (REDACTED if SECRET_NAME.search(k) else v) for k, v in sorted(env.items())}
