"""Params, metrics and data that mean what they say: `--set` everywhere or refused, cache keys over the params
a job uses, observe warnings and `required`, warning signatures, data checked and digested, directory artifacts."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from helpers import ptybatch, write_campaign

from ptycho_batch.util.digests import tree_digest

PY = sys.executable


def campaign(jobs: dict, **extra) -> dict:
    return {"campaign": "t", "backends": {"a": {"runtime": "host"}}, "jobs": jobs, **extra}


def echo(text: str) -> list[str]:
    return [PY, "-c", f"print({text!r})"]


def plan(path: Path, *args: str) -> dict:
    result = ptybatch("plan", str(path), "--json", *args, cwd=path.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def states(folder: Path) -> dict[str, dict]:
    run = sorted((folder / "reports" / ".ptybatch" / "t").glob("*/run.json"))[-1].parent
    return {s["name"]: s for s in (json.loads(p.read_text()) for p in run.glob("jobs/*/state.json"))}


def test_set_overrides_job_params_and_refuses_typos_and_matrix_axes(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, campaign({
        "train": {"backend": "a", "params": {"accelerator": "cuda"}, "command": echo("--accelerator {accelerator}")},
        "sweep": {"backend": "a", "matrix": {"seed": [1, 2]}, "command": echo("{seed} {gridsize}")}},
        defaults={"params": {"gridsize": 1}}))
    assert plan(path, "--set", "accelerator=cpu")["train"]["argv"][-1] == "print('--accelerator cpu')"
    typo = ptybatch("plan", str(path), "--set", "gridsise=2", cwd=tmp_path)
    assert typo.returncode == 2 and "--set gridsise: no param of that name" in typo.stderr
    assert "did you mean 'gridsize'?" in typo.stderr
    axis = ptybatch("plan", str(path), "--set", "seed=3", cwd=tmp_path)
    assert axis.returncode == 2 and "'seed' is a matrix axis of job 'sweep'" in axis.stderr


def test_cache_key_depends_only_on_params_the_job_uses(tmp_path: Path) -> None:
    body = campaign({"uses": {"backend": "a", "command": echo("{gridsize}")},
                     "ignores": {"backend": "a", "command": echo("constant")}},
                    defaults={"params": {"gridsize": 1, "unused": 0}})
    path = write_campaign(tmp_path, body)
    assert ptybatch("submit", str(path), cwd=tmp_path).returncode == 0
    decisions = plan(path, "--set", "unused=5")
    assert not decisions["uses"]["run"] and not decisions["ignores"]["run"]
    decisions = plan(path, "--set", "gridsize=2")
    assert decisions["uses"]["run"] and "params changed" in decisions["uses"]["reason"]
    assert not decisions["ignores"]["run"]
    body["defaults"]["params"]["added"] = "x"   # a new param no command names keeps every key
    write_campaign(tmp_path, body)
    assert not any(d["run"] for d in plan(path).values())


def test_observe_warnings_required_metrics_and_warning_signatures(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, campaign({
        "silent": {"backend": "a", "command": echo("nothing here"),
                   "observe": {"patch_stats": r"Patch stats: mean=(?P<mean>\S+)"}},
        "strict": {"backend": "a", "command": echo("nothing here"),
                   "observe": {"patch_stats": {"pattern": r"Patch stats: mean=(?P<mean>\S+)", "required": True}}},
        "stitch": {"backend": "a", "command": echo("Object stitching failed: shapes differ")}},
        signatures=[{"name": "stitching", "regex": "Object stitching failed", "severity": "warning"}]))
    result = ptybatch("submit", str(path), cwd=tmp_path)
    assert result.returncode == 1
    final = states(tmp_path)
    assert final["silent"]["state"] == "COMPLETED" and final["silent"]["warnings"] == ["patch_stats: no match"]
    assert final["strict"]["state"] == "FAILED" and final["strict"]["failure_class"] == "missing-metric"
    assert "patch_stats: required metric never matched" in final["strict"]["failure_line"]
    assert final["stitch"]["state"] == "COMPLETED"
    assert final["stitch"]["warnings"] == ["Object stitching failed: shapes differ"]
    assert "[ptybatch] silent: COMPLETED (completed with warnings: patch_stats: no match)" in result.stdout
    status = ptybatch("status", str(path), cwd=tmp_path).stdout
    assert "completed with warnings: patch_stats: no match" in status and "missing-metric" in status
    inventory = (tmp_path / "reports" / "t" / "analysis" / "artifact_inventory.md").read_text()
    assert "COMPLETED (completed with warnings: Object stitching failed: shapes differ)" in inventory


def test_missing_data_is_refused_before_anything_runs(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, campaign({"j": {"backend": "a", "command": echo("{data.train}")}},
                                             data={"train": "data/train.npz"}))
    result = ptybatch("submit", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert f"data.train: {tmp_path / 'data' / 'train.npz'} does not exist" in result.stderr
    assert not (tmp_path / "reports" / ".ptybatch" / "t").exists() or not list(
        (tmp_path / "reports" / ".ptybatch" / "t").glob("*/run.json"))


def test_data_digests_are_in_the_inventory_and_the_key_of_jobs_that_use_them(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.npz").write_bytes(b"first")
    path = write_campaign(tmp_path, campaign({"reads": {"backend": "a", "command": echo("{data.train}")},
                                              "other": {"backend": "a", "command": echo("x")}},
                                             data={"train": "data/train.npz"}))
    assert ptybatch("submit", str(path), cwd=tmp_path).returncode == 0
    inventory = (tmp_path / "reports" / "t" / "analysis" / "artifact_inventory.md").read_text()
    assert f"(SHA-1 `{hashlib.sha1(b'first').hexdigest()}`)" in inventory
    (tmp_path / "data" / "train.npz").write_bytes(b"second")
    decisions = plan(path)
    assert decisions["reads"]["run"] and decisions["reads"]["reason"] == "data changed"
    assert not decisions["other"]["run"]


def test_directory_artifact_is_copied_digested_and_named_downstream(tmp_path: Path) -> None:
    make = ("import os; os.makedirs('out/sub'); open('out/wts.h5.zip','w').write('w'); "
            "open('out/sub/p.json','w').write('{}'); os.symlink('/etc/hostname', 'out/link')")
    path = write_campaign(tmp_path, campaign({
        "train": {"backend": "a", "command": [PY, "-c", make],
                  "artifacts": {"model": {"path": "out", "kind": "dir", "as": "train_out", "required": True}}},
        "infer": {"backend": "a", "needs": ["train"],
                  "command": [PY, "-c", "import sys; print(open(sys.argv[1] + '/wts.h5.zip').read())",
                              "{jobs.train.artifacts.model}"], "observe": {"w": "^(w)$"}}}))
    assert ptybatch("submit", str(path), cwd=tmp_path).returncode == 0
    final = states(tmp_path)
    model = Path(final["train"]["artifacts"]["model"]["path"])
    assert model == tmp_path / "reports" / "t" / "analysis" / "train_out"
    assert (model / "sub" / "p.json").read_text() == "{}" and (model / "link").is_symlink()
    assert final["train"]["artifacts"]["model"]["digest"] == tree_digest(model)
    assert final["infer"]["metrics"]["w"] == "w"
    (model / "sub" / "p.json").write_text("changed")
    assert plan(path)["train"]["run"]   # an edited directory artifact is not reused
