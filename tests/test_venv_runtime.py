"""The venv runtime for real: built once from a requirements file, cached, rebuilt when the file changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers import ptybatch, write_campaign


def _campaign(tmp_path: Path, requirements: Path) -> Path:
    probe = ("import json, os, sys, importlib.util as u; print(json.dumps({'prefix': sys.prefix, "
             "'pydantic': u.find_spec('pydantic') is not None, 'workloads': u.find_spec('ptycho_batch.workloads') "
             "is not None, 'virtual_env': os.environ.get('VIRTUAL_ENV'), 'path': os.environ.get('PYTHONPATH')}))")
    return write_campaign(tmp_path, {
        "campaign": "v", "backends": {"lean": {"runtime": "venv", "requirements": str(requirements)}},
        "jobs": {"probe": {"backend": "lean", "command": ["python", "-c", probe]}}})


def test_venv_is_isolated_cached_and_rebuilt_on_change(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# nothing but the standard library\n")
    env = {"PTYBATCH_CACHE": str(tmp_path / "cache")}
    path = _campaign(tmp_path, requirements)
    first = ptybatch("submit", str(path), cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "building venv" in first.stderr
    seen = json.loads((tmp_path / "reports" / "v" / "cli" / "probe.log").read_text())
    venvs = list((tmp_path / "cache" / "venvs").glob("lean-*/ptybatch-ready"))
    assert len(venvs) == 1 and seen["prefix"] == str(venvs[0].parent) == seen["virtual_env"]
    assert seen["workloads"], "the package's workloads must be importable inside the backend venv"
    assert not seen["pydantic"], "runner packages must not leak in"
    exposed = Path(seen["path"])
    assert exposed.parent == tmp_path / "cache" / "src" and os.listdir(exposed) == ["ptycho_batch"]
    assert not list(venvs[0].parent.rglob("*.pth")) or "ptybatch" not in " ".join(
        p.name for p in venvs[0].parent.rglob("*.pth")), "the shared venv holds nothing of one checkout"

    second = ptybatch("submit", str(path), "--force", cwd=tmp_path, env=env)
    assert second.returncode == 0 and "building venv" not in second.stderr

    requirements.write_text("# changed: a new environment\n")
    plan = json.loads(ptybatch("plan", str(path), "--json", cwd=tmp_path, env=env).stdout)
    assert plan["probe"]["run"] and plan["probe"]["reason"].startswith("runtime changed (venv:")
    third = ptybatch("submit", str(path), cwd=tmp_path, env=env)
    assert third.returncode == 0 and "building venv" in third.stderr
    assert len(list((tmp_path / "cache" / "venvs").glob("lean-*/ptybatch-ready"))) == 2
