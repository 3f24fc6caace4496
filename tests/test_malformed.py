"""The malformed-campaign corpus (tests/malformed/*.yaml) and mutation fuzzing of valid campaigns.

Each corpus file starts with `# expect: TEXT`: `plan` must exit 2 with `file:line`, that text (the key or
the limit), no traceback, and nothing written. The fuzz test mutates a valid campaign and `--set` values
and asserts only that ptybatch answers like a tool, not like a crash: no traceback, exit 0, 1 or 2.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptycho_batch.cli.main import main

CORPUS = Path(__file__).parent / "malformed"
CASES = sorted(p.name for p in CORPUS.glob("*.yaml"))


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60


def _plan(path: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["plan", str(path), *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("case", CASES)
def test_malformed_campaign_is_refused(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / case
    shutil.copy(CORPUS / case, path)
    expected = (CORPUS / case).read_bytes().split(b"\n", 1)[0].decode().removeprefix("# expect: ")
    code, output = _plan(path, capsys=capsys)
    assert code == 2, output
    assert f"{path}:" in output and expected in output, output
    assert "Traceback" not in output
    assert sorted(tmp_path.iterdir()) == [path], "a refused campaign must not write anything"


VALID = {
    "campaign": "fuzz",
    "backends": {"a": {"runtime": "host"}},
    "defaults": {"params": {"n": 1, "name": "x"}, "timeout_min": 1},
    "jobs": {
        "make": {"backend": "a", "command": ["echo", "{n}"], "log": "{name}.log",
                 "artifacts": {"o": {"path": "out/{name}.txt", "as": "o_{name}.txt"}}},
        "use": {"backend": "a", "needs": ["make"], "command": "cat {jobs.make.artifacts.o}", "shell": True,
                "matrix": {"seed": [1, 2]}, "observe": {"loss": "loss=([0-9.]+)"}, "expect": {"loss": {"max": 1}}},
    },
}
PATHS = [("campaign",), ("defaults", "params", "n"), ("defaults", "timeout_min"), ("jobs", "make", "command"),
         ("jobs", "make", "log"), ("jobs", "make", "artifacts", "o", "path"), ("jobs", "make", "artifacts", "o", "as"),
         ("jobs", "use", "needs"), ("jobs", "use", "matrix", "seed"), ("jobs", "use", "observe", "loss"),
         ("jobs", "use", "expect", "loss", "max"), ("jobs", "use", "shell"), ("backends", "a", "runtime"),
         ("jobs", "make", "backend"), ("jobs", "use", "command")]
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=3),
       sets=st.lists(st.tuples(st.sampled_from(["n", "name", "seed", "x"]), st.text(max_size=20)), max_size=2))
def test_mutated_campaigns_never_crash(tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
                                       mutations: list[tuple[tuple[str, ...], object]],
                                       sets: list[tuple[str, str]]) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    campaign = yaml.safe_load(yaml.safe_dump(VALID))
    for path, value in mutations:
        target = campaign
        for key in path[:-1]:
            target = target.setdefault(key, {}) if isinstance(target, dict) else {}
        if isinstance(target, dict):
            target[path[-1]] = value
    file = folder / "c.yaml"
    file.write_text(yaml.safe_dump(campaign))
    args = [arg for key, value in sets for arg in ("--set", f"{key}={value}")]
    code, output = _plan(file, *args, "--out", str(folder / "out"), capsys=capsys)
    assert "Traceback" not in output and code in (0, 1, 2), output
