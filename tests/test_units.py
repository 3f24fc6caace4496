"""Unit tests of the small pure pieces: templates, log cleaning, metrics, expectations, triage, firewall."""

from __future__ import annotations

import pytest

from ptycho_batch.campaign.plan import topological_order
from ptycho_batch.campaign.spec import Expect
from ptycho_batch.campaign.templates import placeholders, render
from ptycho_batch.node.envfirewall import REDACTED, build_env, redact
from ptycho_batch.node.observe import check_expectations, clean_text, extract_metrics
from ptycho_batch.node.triage import classify


def test_templates_leave_python_braces_alone() -> None:
    text = "print({seed}, {'a': 1}, {{literal}})"
    assert placeholders(text) == ["seed"]
    assert render(text, {"seed": 3}) == "print(3, {'a': 1}, {literal})"
    with pytest.raises(KeyError):
        render("{data.train}", {})


def test_keras_progress_bars_are_rendered_like_a_terminal() -> None:
    raw = "\x1b[1m1/4\x1b[0m [====....] - loss: 9.0\r2/4 [======..] - loss: 5.0\b\b\b4.0\nPatch stats: mean=1\n"
    assert clean_text(raw).splitlines() == ["2/4 [======..] - loss: 4.0", "Patch stats: mean=1"]


def test_metrics_named_groups_series_and_plain_names() -> None:
    text = "Epoch 1 loss=3.5\nEpoch 2 loss=2.5\nLoaded intensity_scale from bundle: 9.882118\nmode: fast\n"
    metrics, series, epochs = extract_metrics(text, {
        "loss": r"Epoch (?P<epoch>\d+) loss=(?P<loss>\S+)",
        "intensity_scale": r"intensity_scale from bundle: (?P<intensity_scale>\S+)",
        "mode": r"mode: (\w+)"})
    assert metrics == {"loss": 2.5, "intensity_scale": 9.882118, "mode": "fast"}
    assert series["loss"] == [3.5, 2.5]
    assert epochs == {"loss": [1.0, 2.0]}   # an `epoch` group is the series' axis, not a metric


def test_series_without_epoch_group_are_indexed_by_match() -> None:
    """Keras prints one line per step: 3 steps of one epoch are 3 matches, not 3 epochs."""
    text = "Epoch 1/1\n1/3 - loss: 3.0\n2/3 - loss: 2.0\n3/3 - loss: 1.0\n"
    metrics, series, epochs = extract_metrics(text, {"loss": r"\bloss: (?P<loss>\S+)"})
    assert series["loss"] == [3.0, 2.0, 1.0] and epochs == {}


def test_expectations_name_metric_bound_and_value() -> None:
    rules = {"scale": Expect(approx=9.882118, rel=1e-4), "loss": Expect(max=1.0), "psnr": Expect(min=10)}
    assert check_expectations({"scale": 9.8822, "loss": 0.5, "psnr": 12.0}, rules) == []
    failures = check_expectations({"scale": 9.0, "loss": 2.0}, rules)
    assert failures[0].startswith("scale: expected 9.882118 ± 0.000988") and "found 9.0" in failures[0]
    assert failures[1] == "loss: expected <= 1.0, found 2.0"
    assert failures[2] == "psnr: expected a value but the log never showed it"


@pytest.mark.parametrize(("lines", "exit_code", "signal", "expected"), [
    (["Epoch 10/10", "tensorflow.python.framework.errors_impl.InvalidArgumentError: Detected unsupported "
      "operations when trying to compile graph ... ImageProjectiveTransformV3"], 1, None, "xla"),
    (["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"], 1, None, "oom"),
    (["Traceback (most recent call last):", "ModuleNotFoundError: No module named 'torch'"], 1, None, "import"),
    (["working"], None, 9, "killed"),
    (["working"], 137, None, "killed"),
    (["Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: bad shape"], 1, None, "exception"),
    (["done"], 3, None, "exit"),
])
def test_failure_classes(lines: list[str], exit_code: int | None, signal: int | None, expected: str) -> None:
    verdict = classify(lines, exit_code=exit_code, signal=signal, timed_out=False, cancelled=False, unmet=[],
                       missing=[])
    assert verdict is not None and verdict.failure_class == expected


def test_info_lines_mentioning_xla_do_not_make_a_failure_xla() -> None:
    lines = ["I0000 XLA service 0x55 initialized for platform Host", "ValueError: wrong"]
    verdict = classify(lines, exit_code=1, signal=None, timed_out=False, cancelled=False, unmet=[], missing=[])
    assert verdict is not None and verdict.failure_class == "exception"


def test_passing_job_and_post_checks() -> None:
    common = dict(exit_code=0, signal=None, timed_out=False, cancelled=False)
    assert classify(["ok"], unmet=[], missing=[], **common) is None
    assert classify(["ok"], unmet=[], missing=["bundle"], **common).failure_class == "missing-artifact"
    assert classify(["ok"], unmet=["x: expected"], missing=[], **common).failure_class == "expectation"


def test_firewall_builds_from_allowlist_and_declarations() -> None:
    submitter = {"PATH": "/bin", "HOME": "/root", "LC_ALL": "C", "SLURM_JOB_ID": "7", "PYTHONPATH": "/leak",
                 "XLA_FLAGS": "--x", "TF_CPP_MIN_LOG_LEVEL": "0", "CONDA_PREFIX": "/c", "WANDB_MODE": "offline",
                 "MY_SECRET_TOKEN": "s3cret"}
    env = build_env(submitter, {"USE_XLA_TRANSLATE": "0"}, ["WANDB_MODE", "ABSENT"], {"CUDA_VISIBLE_DEVICES": "1"})
    assert env == {"PATH": "/bin", "HOME": "/root", "LC_ALL": "C", "SLURM_JOB_ID": "7", "USE_XLA_TRANSLATE": "0",
                   "WANDB_MODE": "offline", "CUDA_VISIBLE_DEVICES": "1"}
    assert redact({"API_KEY": "k", "DB_PASSWORD": "p", "HOME": "/root"}) == {
        "API_KEY": REDACTED, "DB_PASSWORD": REDACTED, "HOME": "/root"}


def test_cycle_is_named() -> None:
    with pytest.raises(ValueError, match="a -> b -> c -> a"):
        topological_order({"a": ["b"], "b": ["c"], "c": ["a"]})
    assert topological_order({"a": ["b"], "b": [], "c": ["a"]}) == ["b", "a", "c"]
    chain = {f"j{i}": [f"j{i - 1}"] if i else [] for i in range(20000)}
    assert topological_order(chain)[-1] == "j19999", "a long chain must not hit the recursion limit"


def test_matrix_plan_round_trips_through_plan_json(tmp_path) -> None:
    """Planned jobs are built without a second validation and share what their cells have in common: the
    frozen plan.json must still read back as the same plan, and no cell's data may alias another's."""
    import yaml

    from ptycho_batch.campaign.plan import Plan
    from ptycho_batch.engine.session import prepare

    campaign = {"campaign": "m", "backends": {"a": {"runtime": "host", "env": {"LR": "{lr}"}, "pass_env": ["HOME"]}},
                "defaults": {"params": {"lr": 0.1}, "timeout_min": 3},
                "jobs": {"prep": {"backend": "a", "command": ["echo", "{lr}"],
                                  "artifacts": {"model": {"path": "m.txt", "digest": "sha1"}}},
                         "train": {"backend": "a", "needs": ["prep"], "matrix": {"seed": [1, 2], "size": [8, 16]},
                                   "command": ["echo", "{seed}", "{jobs.prep.artifacts.model}"],
                                   "log": "train_{seed}_{size}.log", "observe": {"loss": "loss: ([0-9.]+)"},
                                   "artifacts": {"out": {"path": "o_{seed}.txt", "as": "out_{seed}_{size}.txt"}},
                                   "fallback": [{"when": {"exit_code": 3}, "params": {"lr": 0.01}, "note": "lr"}]}}}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(campaign))
    plan = prepare(path).plan
    assert Plan.model_validate_json(plan.model_dump_json()) == plan
    cells = [job for job in plan.jobs.values() if job.base == "train"]
    assert len(cells) == 4 and len({job.log for job in cells}) == 4 and all(job.needs == ["prep"] for job in cells)
    assert len({id(job.params) for job in cells}) == 4 and len({id(job.argv) for job in cells}) == 4
    assert [job.fallbacks[0].params["lr"] for job in cells] == [0.01] * 4 and cells[0].env == {"LR": "0.1"}


def test_compact_plan_json_loads_to_the_same_plan_as_the_full_one(tmp_path) -> None:
    """plan.json stores a matrix cell as what differs from its job's first cell; it must load to the plan that
    was planned (and equal to what an older, one-full-record-a-job plan.json of it loads to), its cells sharing
    the rest; a cell naming no job, or a field no job has, is a damaged plan (ValueError); a cell with an ill-typed
    own field raises RecordError naming it when it is read (cells are typed on access)."""
    import json

    import yaml

    from ptycho_batch.campaign.plan import CELL_OF, load_plan, plan_json
    from ptycho_batch.engine.session import prepare
    from ptycho_batch.util.errors import RecordError

    campaign = {"campaign": "m", "backends": {"a": {"runtime": "host"}},
                "jobs": {"prep": {"backend": "a", "command": ["echo", "prep"],
                                  "artifacts": {"model": {"path": "m.txt"}}},
                         "train": {"backend": "a", "needs": ["prep"], "matrix": {"seed": [1, 2, 3], "x": [1, 1.0]},
                                   "command": ["echo", "{seed}", "{x}", "{jobs.prep.artifacts.model}"],
                                   "env": {"X": "{x}"}, "artifacts": {"out": {"path": "o.txt", "as": "o_{seed}_{x}"}}},
                         "after": {"backend": "a", "needs": ["train"], "command": ["echo", "done"]}}}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(campaign))
    plan = prepare(path).plan
    compact = b"".join(plan_json(plan))
    raw = json.loads(compact)["jobs"]
    assert CELL_OF not in raw["prep"] and CELL_OF not in raw["train[seed=1,x=1]"] and "argv" in raw["after"]
    assert raw["train[seed=2,x=1.0]"][CELL_OF] == "train[seed=1,x=1]" and "resources" not in raw["train[seed=2,x=1.0]"]
    loaded = load_plan(compact)
    assert loaded == plan and list(loaded.jobs) == list(plan.jobs)
    assert load_plan(plan.model_dump_json(indent=1).encode()) == loaded   # an older run's plan.json
    cells = [job for name, job in loaded.jobs.items() if job.base == "train"]
    assert [c.params["x"] for c in cells] == [1, 1.0] * 3 and [type(c.params["x"]) for c in cells[:2]] == [int, float]
    assert cells[1].env == {"X": "1.0"} and cells[0].env == {"X": "1"}
    assert cells[1].resources is cells[0].resources and cells[1].params is not cells[0].params
    for damage in ({CELL_OF: "nowhere", "name": "x"}, {CELL_OF: "train[seed=1,x=1]", "bogus": 1}):
        broken = json.loads(compact)
        broken["jobs"]["train[seed=3,x=1]"] = damage
        with pytest.raises(ValueError):
            load_plan(json.dumps(broken).encode())
    broken = json.loads(compact)   # an ill-typed own field: the cell is typed when read, and says so
    broken["jobs"]["train[seed=3,x=1]"] = {CELL_OF: "train[seed=1,x=1]", "name": "train[seed=3,x=1]", "argv": "no"}
    damaged = load_plan(json.dumps(broken).encode())
    assert damaged.jobs["train[seed=2,x=1]"] == plan.jobs["train[seed=2,x=1]"]
    with pytest.raises(RecordError, match=r"jobs\.train\[seed=3,x=1\]\.argv"):
        damaged.jobs["train[seed=3,x=1]"]


def test_write_all_goes_on_after_a_short_write_and_raises_why(tmp_path) -> None:
    """A file-size limit makes `os.write` write less than asked, as a filling disk does: `write_all` must go
    on and raise the reason (EFBIG here, ENOSPC on a full disk) instead of dropping the rest silently."""
    import subprocess
    import sys

    script = ("import errno, os, resource, signal, sys\n"
              "from ptycho_batch.util.fsio import write_all\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
              "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND)\n"
              "write_all(fd, b'x' * 600)\n"
              "try:\n"
              "    write_all(fd, b'y' * 3000)\n"
              "except OSError as error:\n"
              "    print(errno.errorcode[error.errno])\n")
    target = tmp_path / "f.log"
    result = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "EFBIG", "a short write must go on until the write that says why"
    assert target.read_bytes() == b"x" * 600 + b"y" * 400
