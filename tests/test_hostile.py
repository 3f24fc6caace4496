"""Hostile input through templates, links and the shell: nothing is written outside the output tree.

Each case runs the real CLI in `tmp_path/box` and asserts that no file appeared anywhere else under
`tmp_path` (the `outside` directory is where an escape would land).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import ptybatch, write_campaign

ESCAPE = "../../../../../outside/X"


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _box(tmp_path: Path, campaign: dict) -> tuple[Path, Path]:
    box = tmp_path / "box"
    box.mkdir()
    (tmp_path / "outside").mkdir()
    return box, write_campaign(box, campaign)


def _campaign(job: dict, **params: object) -> dict:
    return {"campaign": "t", "backends": {"a": {"runtime": "host"}}, "defaults": {"params": params},
            "jobs": {"j": {"backend": "a", **job}}}


PATH_CASES = {
    "log": ({"command": ["true"], "log": "{name}.log"}, "jobs.j.log"),
    "as": ({"command": ["touch", "o"], "artifacts": {"o": {"path": "o", "as": "{name}"}}}, "jobs.j.artifacts.o.as"),
    "artifact_path": ({"command": ["true"], "artifacts": {"o": {"path": "{name}"}}}, "jobs.j.artifacts.o.path"),
}


@pytest.mark.parametrize("case", sorted(PATH_CASES))
@pytest.mark.parametrize("via", ["set", "matrix"])
def test_templated_path_cannot_escape(tmp_path: Path, case: str, via: str) -> None:
    job, key = PATH_CASES[case]
    if via == "matrix":
        job = {**job, "matrix": {"name": ["ok", ESCAPE]}}
    box, path = _box(tmp_path, _campaign(job, name="ok"))
    before = _files(tmp_path)
    args = ["--set", f"name={ESCAPE}"] if via == "set" else []
    for verb in ("plan", "submit"):
        result = ptybatch(verb, str(path), *args, cwd=box)
        assert result.returncode == 2, (verb, result.stdout, result.stderr)
        assert key in result.stderr and ESCAPE in result.stderr and f"{path}:" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert _files(tmp_path) == before, "a refused plan must write nothing"


def test_absolute_rendered_path_is_refused(tmp_path: Path) -> None:
    box, path = _box(tmp_path, _campaign({"command": ["true"], "log": "{name}"}, name="ok"))
    result = ptybatch("submit", str(path), "--set", f"name={tmp_path}/outside/abs.log", cwd=box)
    assert result.returncode == 2 and "jobs.j.log" in result.stderr, result.stderr
    assert not any((tmp_path / "outside").iterdir())


INJECTIONS = ["x; touch {F}", "$(touch {F})", "a && touch {F}", "a | tee {F}", "`touch {F}`", "a\ntouch {F}",
              "'; touch {F}; '", "\"; touch {F}; \""]


SHELL_STYLES = {  # `shell: true` (a string or a list), and argv lists that hand a shell its script
    "string": ("echo {value} > got.txt", True), "list": (["echo", "{value}", ">", "got.txt"], True),
    "sh -c": (["sh", "-c", "echo {value} > got.txt"], False),
    "bash -euc": (["/bin/bash", "-euc", "echo {value} > got.txt"], False),
    "env bash -o pipefail -c": (["env", "LC_ALL=C", "bash", "--norc", "-o", "pipefail", "-c",
                                 "echo {value} > got.txt"], False)}


@pytest.mark.parametrize("style", list(SHELL_STYLES))
def test_shell_values_are_data_not_code(tmp_path: Path, style: str) -> None:
    command, shell = SHELL_STYLES[style]
    box, path = _box(tmp_path, _campaign({"command": command, "shell": shell,
                                          "artifacts": {"got": {"path": "got.txt", "as": "got_{n}.txt"}}},
                                         value="v", n=0))
    flag = tmp_path / "outside" / "F"
    for index, template in enumerate(INJECTIONS):
        value = template.format(F=flag)
        quoted = json.dumps(value)  # a YAML double-quoted scalar: any text
        result = ptybatch("submit", str(path), "--set", f"value={quoted}", "--set", f"n={index}", cwd=box)
        assert result.returncode == 0, (value, result.stdout, result.stderr)
        assert not flag.exists(), f"{value!r} ran a command"
        assert (box / "reports" / "t" / "analysis" / f"got_{index}.txt").read_text() == value + "\n"


@pytest.mark.parametrize("link", ["file", "directory"])
def test_artifact_link_outside_workdir_is_refused(tmp_path: Path, link: str) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    make = f"ln -s {secret} leak.txt" if link == "file" else f"ln -s {secret.parent} d"
    source = "leak.txt" if link == "file" else "d/secret.txt"
    box, path = _box(tmp_path, _campaign({"command": make, "shell": True,
                                          "artifacts": {"leak": {"path": source, "digest": "sha1"}}}))
    secret.write_text("top secret\n")
    result = ptybatch("submit", str(path), cwd=box)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert not any((box / "reports" / "t" / "analysis").glob("*secret*"))
    assert not any((box / "reports" / "t" / "analysis").glob("leak*"))
    for written in (box / "reports").rglob("*"):
        assert written.is_symlink() or not written.is_file() or "top secret" not in written.read_text(errors="replace"), written
    notes = list((box / "reports" / "t" / "red").glob("blocked_*.md"))
    assert notes and "outside the job's workdir" in notes[0].read_text()


SECRETS = {"HF_AUTH": "hf_s3cr3tvalue", "MY_PASSPHRASE": "correct horse battery", "API_TOKEN": "tok-123456",
           "DB_CONN": "postgres://admin:pg-pass-9876@db.example:5432/x"}


@pytest.mark.parametrize("ending", ["exit 1", "true"])
def test_pass_env_secrets_land_nowhere(tmp_path: Path, ending: str) -> None:
    printer = "echo $HF_AUTH; echo \"$MY_PASSPHRASE\"; echo token=$API_TOKEN; echo $DB_CONN; " + ending
    box, path = _box(tmp_path, _campaign({"command": printer, "shell": True, "stage": "test",
                                          "pass_env": sorted(SECRETS), "observe": {"token": r"token=(\S+)"},
                                          "env": {"MIRROR": "https://user:mirror-pw-42@mirror.example/simple"}}))
    result = ptybatch("submit", str(path), cwd=box, env=SECRETS)
    assert result.returncode == (1 if ending == "exit 1" else 0), result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    secrets = [*list(SECRETS.values())[:3], "pg-pass-9876"]
    written = [p for p in box.rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in written)
    for file in written:
        text = file.read_bytes()
        for secret in secrets:
            assert secret.encode() not in text, f"{secret!r} is in {file}"
    for shown in (result.stdout, result.stderr):
        assert not any(secret in shown for secret in secrets)
    logs = "".join(p.read_text() for p in (box / "reports" / "t" / "cli").glob("*.log"))
    assert logs.count("***redacted***") == 4, "masked, not dropped"
    env_record = (box / "reports" / "t" / "analysis" / "j.env.json").read_text()
    assert "mirror.example" in env_record and "mirror-pw-42" not in env_record, "only the URL's password is masked in a variable that is not secret"
