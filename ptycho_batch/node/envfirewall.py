"""The environment firewall: a job's environment is built, never inherited.

empty + a small allowlist from the submitter + backend env + job env + the `pass_env` names. PYTHONPATH,
LD_LIBRARY_PATH, VIRTUAL_ENV, CONDA_*, XLA_FLAGS, TF_* and everything else stay out unless listed.

Redaction is by value: the values of `pass_env` variables and of secret-looking names, and passwords in
URLs, are masked wherever ptybatch writes or shows text from a job (env records, logs after the job,
red-note tails, the TUI), so a secret the job printed does not land in the output tree or the journal.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

ALLOWED_NAMES = frozenset({"PATH", "HOME", "USER", "LANG", "TZ", "TMPDIR", "TERM", "CUDA_VISIBLE_DEVICES"})
ALLOWED_PREFIXES = ("LC_", "SLURM_")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|CREDENTIAL", re.IGNORECASE)
REDACTED = "***redacted***"
URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@/\s]+)(@)")
MIN_MASKED = 4   # shorter values are masked in env records only (masking "1" everywhere would ruin a log)


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


def redact(env: Mapping[str, str], pass_env: Iterable[str] = ()) -> dict[str, str]:
    """The env record: pass_env and secret-looking values masked, URL passwords masked in the rest."""
    passed = set(pass_env)
    return {k: (REDACTED if k in passed or SECRET_NAME.search(k) else mask(v, ())) for k, v in sorted(env.items())}


def secret_values(env: Mapping[str, str], pass_env: Iterable[str]) -> list[str]:
    """The values to mask in any text: pass_env values, secret-looking values, URL passwords (longest first)."""
    passed = set(pass_env)
    values = {v for k, v in env.items() if k in passed or SECRET_NAME.search(k)}
    values |= {match.group(2) for v in env.values() for match in URL_PASSWORD.finditer(v)}
    return sorted((v for v in values if len(v) >= MIN_MASKED), key=len, reverse=True)


def job_secrets(pass_env: Iterable[str]) -> list[str]:
    """What to mask in text from a job, seen from this process (the runner, or a reader in the same shell)."""
    return secret_values(os.environ, pass_env)


def mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return URL_PASSWORD.sub(rf"\1{REDACTED}\3", text) if "://" in text else text


def _holds_any(path: Path, needles: Sequence[bytes]) -> bool:
    try:
        with open(path, "rb") as reader:
            return any(needle in line for line in reader for needle in needles)
    except FileNotFoundError:
        return False


def mask_file(path: Path, secrets: Sequence[str]) -> None:
    """Mask secret values in a finished job's log, line by line (replaced only when something changed)."""
    needles = [secret.encode() for secret in secrets]
    if not needles or not _holds_any(path, needles):
        return  # the common case: one read, nothing written
    tmp = path.with_name(f".{path.name}.masking")
    changed = False
    try:
        with open(path, "rb") as reader, open(tmp, "wb") as writer:
            for line in reader:
                for needle in needles:
                    if needle in line:
                        line = line.replace(needle, REDACTED.encode())
                        changed = True
                writer.write(line)
        if changed:
            os.replace(tmp, path)
    except FileNotFoundError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
