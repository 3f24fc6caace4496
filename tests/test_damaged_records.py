"""Damaged journal records: every verb names or survives them, none prints a traceback.

A damaged `state.json` is moved aside to `state.json.corrupt` and reads LOST (and a new submit re-runs that
job); a damaged `run.json` reads as empty; a damaged `plan.json` is exit 5 naming the file for the verbs
that need that run's plan, and never blocks a new submit.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import ptybatch, write_campaign

CAMPAIGN = {"campaign": "t", "backends": {"a": {"runtime": "host"}},
            "jobs": {"one": {"backend": "a", "command": ["true"]},
                     "two": {"backend": "a", "command": ["true"], "needs": ["one"]}}}
VERBS = [["status"], ["report"], ["plan"], ["cancel"], ["submit", "--force"], ["submit"]]


def damage(path: Path, kind: str) -> None:
    good = path.read_bytes() if path.exists() else b'{"name": "one", "state": "COMPLETED"}'
    path.write_bytes({"empty": b"", "truncated": good[: len(good) // 2], "random": os.urandom(300),
                      "nuls": b"\0" * 300, "object": b"{}",
                      "unknown_state": good.replace(b'"COMPLETED"', b'"EXPLODED"')}[kind])


def _latest_run(folder: Path) -> Path:
    return sorted((folder / "reports" / ".ptybatch" / "t").glob("2*"))[-1]


def _run(folder: Path, campaign: Path, verb: list[str]) -> tuple[int, str]:
    result = ptybatch(verb[0], str(campaign), *verb[1:], cwd=folder)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, (verb, output)
    return result.returncode, output


@pytest.mark.parametrize("kind", ["empty", "truncated", "random", "nuls", "object", "unknown_state"])
def test_damaged_job_record_every_verb(tmp_path: Path, kind: str) -> None:
    campaign = write_campaign(tmp_path, CAMPAIGN)
    assert _run(tmp_path, campaign, ["submit"])[0] == 0
    run = _latest_run(tmp_path)
    record = run / "jobs" / "one" / "state.json"
    damage(record, kind)
    code, output = _run(tmp_path, campaign, ["status"])
    assert code in (0, 1) and "LOST" in output, output
    assert (record.parent / "state.json.corrupt").exists()
    assert "state.json.corrupt" in record.read_text(), "the LOST record names where the damaged file went"
    for verb in VERBS:
        damage(record, kind)   # damaged again before every verb (the first reader moves it aside)
        code, output = _run(tmp_path, campaign, verb)
        assert code in (0, 1), (verb, output)
    damage(_latest_run(tmp_path) / "jobs" / "one" / "state.json", kind)
    code, output = _run(tmp_path, campaign, ["submit"])
    assert code == 0 and "one" in output, output   # the LOST job re-runs, the campaign passes again


@pytest.mark.parametrize("name", ["run.json", "plan.json"])
@pytest.mark.parametrize("kind", ["empty", "random", "object"])
def test_damaged_run_record_every_verb(tmp_path: Path, name: str, kind: str) -> None:
    campaign = write_campaign(tmp_path, CAMPAIGN)
    assert _run(tmp_path, campaign, ["submit"])[0] == 0
    record = _latest_run(tmp_path) / name
    damage(record, kind)
    for verb in VERBS[:4]:
        code, output = _run(tmp_path, campaign, verb)
        assert code in (0, 5), (verb, output)
        if code == 5:
            assert f"{record}" in output, output
    code, output = _run(tmp_path, campaign, ["submit"])
    assert code == 0, output   # a damaged old run never blocks a new one


@pytest.mark.parametrize("kind", ["truncated", "cell"])
def test_damaged_plan_is_one_line_naming_the_runs_plan_json(tmp_path: Path, kind: str) -> None:
    """A damaged plan.json, whole (truncated) or one matrix cell of it (built when read, long after the file
    was loaded): `status` and `report` of the run say which run's plan, in one line, exit 5."""
    import json

    matrix = {"campaign": "t", "backends": {"a": {"runtime": "host"}},
              "jobs": {"sweep": {"backend": "a", "matrix": {"i": [1, 2, 3]}, "command": ["echo", "{i}"]}}}
    campaign = write_campaign(tmp_path, matrix)
    assert _run(tmp_path, campaign, ["submit"])[0] == 0
    plan = _latest_run(tmp_path) / "plan.json"
    if kind == "truncated":
        damage(plan, "truncated")
    else:
        data = json.loads(plan.read_text())
        data["jobs"]["sweep[i=2]"]["argv"] = 5   # a cell's own field, ill-typed
        plan.write_text(json.dumps(data))
    for verb in ("status", "report"):
        result = ptybatch(verb, str(plan.parent), cwd=tmp_path)
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 5 and "Traceback" not in result.stdout + result.stderr, (verb, result.stderr)
        assert len(errors) == 1 and errors[0].startswith(f"error: {plan}: "), (verb, result.stderr)
        assert kind == "truncated" or "jobs.sweep[i=2].argv" in errors[0], errors
