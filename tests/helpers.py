"""Small helpers shared by the engine tests: write a campaign, run the real `ptybatch` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from ptycho_batch.journal.store import Run


def write_campaign(folder: Path, body: str | dict, name: str = "campaign.yaml") -> Path:
    path = folder / name
    text = body if isinstance(body, str) else yaml.safe_dump(body, sort_keys=False)
    path.write_text(textwrap.dedent(text))
    return path


def ptybatch(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300,
             ) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process (exit codes and output as a user sees them)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "ptycho_batch", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def host_campaign(jobs: dict, **extra) -> dict:
    """A campaign with two host backends (`a` required, `b` optional)."""
    return {"campaign": "t", "title": "Test campaign", "policy": {"id": "POLICY-T", "required": ["a"],
                                                                "optional": ["b"]},
            "backends": {"a": {"runtime": "host"}, "b": {"runtime": "host"}}, "jobs": jobs, **extra}


def states(out: Path, campaign: str = "t") -> dict[str, dict]:
    """Every job record (own, or from its submission record) of the newest run of `campaign` under `out`, by job name ({} before there is one)."""
    runs = sorted((out / ".ptybatch" / campaign).glob("*/run.json"))
    if not runs:
        return {}
    return {name: state.model_dump(mode="json") for name, state in Run(runs[-1].parent).read_states().items()}
