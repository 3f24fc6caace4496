"""A campaign's `data:` files: each must exist before anything runs, and each gets a SHA-1 that enters the
cache key of the jobs that read it (a regenerated dataset reruns them).

Digests are cached by path, size and mtime under the ptybatch cache, so a gigabyte dataset is read once.
"""

from __future__ import annotations

import json
from pathlib import Path

from ptycho_batch.campaign.spec import LocatedYaml
from ptycho_batch.util.digests import path_digest
from ptycho_batch.util.errors import SpecError
from ptycho_batch.util.fsio import locked, write_json
from ptycho_batch.util.paths import cache_dir


def digest_data(data: dict[str, str], located: LocatedYaml) -> dict[str, str]:
    """SHA-1 of every data entry (a file, or a directory's files); SpecError naming each missing one."""
    missing = [f"{located.where(('data', key))}: data.{key}: {path} does not exist"
               for key, path in data.items() if not Path(path).exists()]
    if missing:
        raise SpecError(missing)
    if not data:
        return {}
    cache_file = cache_dir() / "data-digests.json"
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    with locked(cache_file.with_suffix(".lock")):
        try:
            known = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            known = {}
        digests = {}
        for key, path in data.items():
            stat = Path(path).stat()
            stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
            entry = known.get(path)
            if not entry or entry.get("stamp") != stamp or Path(path).is_dir():  # a tree: its files may change
                entry = known[path] = {"stamp": stamp, "sha1": path_digest(Path(path), "sha1")}
            digests[key] = entry["sha1"]
        write_json(cache_file, known)
    return digests
