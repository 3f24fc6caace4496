"""The user's own defaults for a real cluster: `~/.config/ptybatch/config.yaml` (or $PTYBATCH_CONFIG).

    slurm:
      partition: gpu
      account: my_project
      qos: normal

These sit under every campaign's `resources` (the campaign wins), so campaign files stay portable.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from ptycho_batch.campaign.spec import Resources
from ptycho_batch.util.errors import SpecError


def config_path() -> Path:
    explicit = os.environ.get("PTYBATCH_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ptybatch" / "config.yaml"


def user_resources() -> Resources:
    path = config_path()
    if not path.is_file():
        return Resources()
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return Resources.model_validate(data.get("slurm") or {})
    except (yaml.YAMLError, ValueError) as exc:
        raise SpecError([f"{path}: invalid ptybatch user config: {exc}"]) from None
