"""Bad campaign files: each gives a clear file:line message, exit 2, nothing run and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ptybatch, write_campaign

GOOD = """\
campaign: demo
backends:
  torch: {runtime: host}
jobs:
  train:
    backend: torch
    command: [echo, "{gridsize}"]
    params: {gridsize: 1}
    artifacts:
      bundle: {path: out/wts.h5.zip}
  infer:
    backend: torch
    needs: [train]
    command: [echo, "{jobs.train.artifacts.bundle}"]
"""

BAD_CASES = {
    "yaml_syntax": (GOOD.replace("backends:\n", "backends: [\n"), "YAML syntax error"),
    "unknown_key": (GOOD.replace("    backend: torch\n    command: [echo, \"{gridsize}\"]",
                                 "    backend: torch\n    comand: [x]\n    command: [echo, \"{gridsize}\"]"),
                    "did you mean 'command'"),
    "wrong_type": (GOOD.replace("params: {gridsize: 1}", "params: {gridsize: 1}\n    timeout_min: soon"),
                   "jobs.train.timeout_min"),
    "unknown_backend": (GOOD.replace("    needs: [train]\n", "    needs: [train]\n").replace(
        "  infer:\n    backend: torch", "  infer:\n    backend: torhc"), "did you mean 'torch'"),
    "unknown_need": (GOOD.replace("needs: [train]", "needs: [trian]"), "unknown job 'trian'"),
    "cycle": (GOOD.replace("    command: [echo, \"{gridsize}\"]", "    needs: [infer]\n    command: [echo, \"{gridsize}\"]"),
              "dependency cycle"),
    "unknown_template": (GOOD.replace('[echo, "{gridsize}"]', '[echo, "{gridsise}"]'), "unknown template {gridsise}"),
    "string_command": (GOOD.replace('command: [echo, "{gridsize}"]', 'command: "echo hi"'), "shell: true"),
    "artifact_escapes": (GOOD.replace("out/wts.h5.zip", "../../etc/passwd"), "without '..'"),
    "absolute_artifact": (GOOD.replace("out/wts.h5.zip", "/etc/passwd"), "relative path"),
    "log_escapes": (GOOD.replace("    params: {gridsize: 1}", "    params: {gridsize: 1}\n    log: ../x.log"), "log"),
    "report_dir_escapes": (GOOD.replace("campaign: demo", "campaign: demo\nreport_dir: /abs"), "report_dir"),
    "same_log": (GOOD.replace("    params: {gridsize: 1}", "    params: {gridsize: 1}\n    log: same.log").replace(
        "    needs: [train]", "    needs: [train]\n    log: same.log"), "would both write log"),
    "bad_regex": (GOOD.replace("    params: {gridsize: 1}", "    params: {gridsize: 1}\n    observe: {x: '(unclosed'}"),
                  "invalid regex"),
    "empty_matrix": (GOOD.replace("    params: {gridsize: 1}", "    params: {gridsize: 1}\n    matrix: {seed: []}"),
                     "matrix"),
    "template_not_in_needs": (GOOD.replace("needs: [train]", "needs: []"), "must be listed in needs"),
    "duplicate_key": (GOOD.replace("campaign: demo", "campaign: demo\ncampaign: other"), "duplicate key"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_refused_with_location(tmp_path: Path, case: str) -> None:
    text, expected = BAD_CASES[case]
    path = write_campaign(tmp_path, text)
    before = sorted(tmp_path.rglob("*"))
    for verb in ("validate", "submit"):
        result = ptybatch(verb, str(path), cwd=tmp_path)
        assert result.returncode == 2, (verb, result.stdout, result.stderr)
        assert expected in result.stderr, result.stderr
        assert f"{path}:" in result.stderr, result.stderr
    assert sorted(tmp_path.rglob("*")) == before, "an invalid campaign must not write anything"


def test_error_names_line_and_column(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, BAD_CASES["unknown_key"][0])
    result = ptybatch("validate", str(path), cwd=tmp_path)
    assert f"{path}:7:5: jobs.train.comand: unknown key" in result.stderr


def test_all_errors_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("needs: [train]", "needs: [trian]").replace('[echo, "{gridsize}"]', '[echo, "{nope}"]')
    result = ptybatch("validate", str(write_campaign(tmp_path, text)), cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown job 'trian'" in result.stderr and "unknown template {nope}" in result.stderr


def test_missing_file_lists_campaigns_in_jobs(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    write_campaign(tmp_path / "jobs", GOOD, "phase_a.yaml")
    result = ptybatch("submit", "phase_b", cwd=tmp_path)
    assert result.returncode == 2
    assert "phase_a.yaml" in result.stderr and "not found" in result.stderr


def test_campaign_name_is_looked_up_in_jobs(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    write_campaign(tmp_path / "jobs", GOOD, "phase_a.yaml")
    for name in ("phase_a", "phase_a.yaml"):
        result = ptybatch("validate", name, cwd=tmp_path)
        assert result.returncode == 0, result.stderr


def test_schema_is_json_schema(tmp_path: Path) -> None:
    import json

    result = ptybatch("schema", cwd=tmp_path)
    schema = json.loads(result.stdout)
    assert "jobs" in schema["properties"] and "backends" in schema["required"]


def test_validate_reports_every_layer_in_one_pass(tmp_path: Path) -> None:
    """Schema, command form, references, files that must exist and expectations nothing can produce: all at once."""
    path = tmp_path / "layers.yaml"
    path.write_text(
        "campaign: v\n"
        "backends:\n"
        "  a: {runtime: venv, requirements: nothere/requirements.txt}\n"
        "  b: {runtime: host}\n"
        "jobs:\n"
        "  one: {backend: a, timeout_min: -3, command: [echo, x]}\n"
        "  two: {backend: b, command: 'echo hi'}\n"
        "  three:\n"
        "    backend: b\n"
        "    needs: [onee]\n"
        "    command: [echo, '{sede}']\n"
        "    observe: {loss: 'loss=(?P<loss>\\S+)'}\n"
        "    expect: {intensity_scale: {approx: 9.88}}\n")
    result = ptybatch("validate", str(path), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    expected = [":6:", "jobs.one.timeout_min", ":7:", "jobs.two: command is a string", ":10:",
                "unknown job 'onee'", "unknown template {sede}", ":3:", "backends.a.requirements: file not found",
                ":13:", "jobs.three.expect.intensity_scale: no observe entry"]
    for piece in expected:
        assert piece in result.stderr, (piece, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 6, result.stderr
    assert not list(tmp_path.glob("reports*")), "validate writes nothing"
