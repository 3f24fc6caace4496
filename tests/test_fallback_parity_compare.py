"""Fallback rules, campaign signatures, parity checks and `ptybatch compare` (real CLI, small real jobs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import host_campaign, ptybatch, write_campaign

from ptycho_batch.campaign.spec import FallbackWhen, ParityCheck
from ptycho_batch.journal.records import JobState
from ptycho_batch.node.runner import rule_matches
from ptycho_batch.reports.parity import difference, evaluate, within

PY = sys.executable


def test_rule_matching_needs_every_condition() -> None:
    failed = JobState(name="j", state="FAILED", failure_class="xla", exit_code=1)
    lines = ["Epoch 3", "InvalidArgumentError: ImageProjectiveTransformV3 has no XLA kernel"]
    assert rule_matches(FallbackWhen(**{"class": "xla"}), failed, lines)
    assert rule_matches(FallbackWhen(pattern="ImageProjectiveTransformV3"), failed, lines)
    assert not rule_matches(FallbackWhen(pattern="CUDA out of memory"), failed, lines)
    assert not rule_matches(FallbackWhen(**{"class": "xla", "exit_code": 137}), failed, lines)
    assert rule_matches(FallbackWhen(exit_code=1), failed, lines)


def test_parity_math_is_symmetric_and_tolerances_either_way() -> None:
    assert difference(1.0, 1.1) == difference(1.1, 1.0)
    diff = difference(100.0, 104.0)
    assert diff.absolute == 4.0 and abs(diff.relative - 4 / 104) < 1e-12
    assert within(diff, 0.05, None) and not within(diff, 0.01, None) and within(diff, 0.01, 5.0)
    assert difference(0.0, 0.0).relative == 0.0 and difference(0.0, 1e-9).relative == 1.0
    check = ParityCheck(name="p", metrics=["m", "absent"], between=["a", "b"], rel=0.05)
    states = {"a": JobState(name="a", state="COMPLETED", metrics={"m": 1.0}),
              "b": JobState(name="b", state="COMPLETED", metrics={"m": 1.2})}
    rows = evaluate(check, states)
    assert rows[0].ok is False and rows[1].ok is None
    states["b"].state = "FAILED"
    assert evaluate(check, states)[0].ok is None, "parity is only evaluated when both jobs completed"


FLAKY = ("import sys; mode = sys.argv[1]; print('Epoch 1/1 loss=2.0');"
         "sys.exit('InvalidArgumentError: ImageProjectiveTransformV3 has no XLA kernel') if mode == 'native' "
         "else print('Patch stats: mean=0.52, std=0.1, var_zero_mean=0.01')")
STATS = {"patch_stats": r"Patch stats: mean=(?P<mean>\S+), std=(?P<std>\S+), var_zero_mean=(?P<var_zero_mean>\S+)",
         "loss": r"Epoch (?P<epoch>\d+)/\d+ loss=(?P<loss>\S+)"}


def _phase(translate: str, torch_mean: float) -> dict:
    jobs = {
        "torch_train": {"backend": "a", "stage": "train", "observe": STATS,
                        "command": [PY, "-c", f"print('Epoch 1/2 loss=3.0'); print('Epoch 2/2 loss=1.0');"
                                              f"print('Patch stats: mean={torch_mean}, std=0.1, var_zero_mean=0.01')"]},
        "tf_train": {"backend": "b", "stage": "train", "params": {"translate": translate}, "observe": STATS,
                     "command": [PY, "-c", FLAKY, "{translate}"],
                     "fallback": [{"when": {"class": "xla"}, "params": {"translate": "xla"},
                                   "note": "native translation has no XLA kernel; XLA-compatible path"}]},
        "tf_other": {"backend": "b", "command": [PY, "-c", "raise SystemExit('ImageProjectiveTransformV3 again')"]},
    }
    return host_campaign(jobs, signatures=[{"name": "ipt_v3", "regex": "ImageProjectiveTransformV3", "class": "xla",
                                            "hint": "use --translate xla"}],
                         parity=[{"name": "forward_patch_stats", "metrics": ["patch_stats.mean", "patch_stats.std"],
                                  "between": ["torch_train", "tf_train"], "rel": 0.05}])


def test_fallback_signatures_parity_and_report(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, _phase("native", 0.5))
    result = ptybatch("submit", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = tmp_path / "reports" / "t"
    state = json.loads(next((tmp_path / "reports" / ".ptybatch" / "t").glob("*/jobs/tf_train/state.json")).read_text())
    assert state["state"] == "COMPLETED" and state["attempt"] == 2
    assert [a["state"] for a in state["attempts"]] == ["FAILED", "COMPLETED"]
    assert state["attempts"][0]["failure_class"] == "xla" and state["attempts"][0]["red_note"]
    assert Path(state["attempts"][0]["red_note"]).exists(), "the failed attempt's red note stays"
    assert "use --translate xla" in Path(state["attempts"][0]["red_note"]).read_text()
    assert (report / "cli" / "tf_train.attempt2.log").read_text().startswith("Epoch 1/1")
    assert "ImageProjectiveTransformV3" in (report / "cli" / "tf_train.log").read_text()
    inventory = (report / "analysis" / "artifact_inventory.md").read_text()
    assert "COMPLETED via fallback (native translation has no XLA kernel; XLA-compatible path)" in inventory
    command = f"- **Command:** `{PY} -c"
    tf_section = inventory.split("### `tf_train`")[1].split("###")[0]
    assert command in tf_section and tf_section.split(command)[1].splitlines()[0].endswith(" xla`"), \
        "the inventory gives the command that produced the result (the fallback's)"
    assert "  - #1 FAILED (xla): `" in tf_section and tf_section.split("  - #1 FAILED (xla): `")[1].startswith(PY)
    assert " native`" in tf_section.split("  - #1 FAILED (xla)")[1].splitlines()[0], "the failed attempt's own argv"
    assert "#2 COMPLETED, fallback: native translation has no XLA kernel" in tf_section
    note = Path(state["attempts"][0]["red_note"]).read_text()
    assert "## Resolved by a fallback" in note and "tf_train.attempt2.log" in note, "the red note links the fix"
    assert [a["argv"][-1] for a in state["attempts"]] == ["native", "xla"]
    assert "[ptybatch] tf_train: COMPLETED via fallback: native translation has no XLA kernel" in result.stdout
    assert "after attempt 1 failed (xla)" in result.stdout
    assert "**ipt_v3** (2 occurrences)" in inventory, "one blocker, two occurrences across jobs"
    assert "| forward_patch_stats (torch_train vs tf_train) | `patch_stats.mean` | 0.5 | 0.52 |" in inventory
    assert "✅" in inventory.split("## Parity")[1].split("##")[0]
    (tmp_path / "b").mkdir()
    other = write_campaign(tmp_path / "b", {**_phase("xla", 0.7), "campaign": "t2"})
    assert ptybatch("submit", str(other), cwd=tmp_path / "b").returncode == 0
    twin = json.loads((tmp_path / "b" / "reports" / "t2" / "analysis" / "artifact_inventory.json").read_text())
    assert any(row["metric"] == "patch_stats.mean" and row["ok"] is False for row in twin["parity"])

    compared = ptybatch("compare", str(path), str(other), "--metrics", "patch_stats.*", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    written = next((tmp_path / "b" / "reports" / "t2" / "analysis").glob("compare_t_*_vs_t2_*.md"))
    text = written.read_text()
    assert "| `torch_train` | `patch_stats.mean` | 0.5 | 0.7 |" in text and "beyond tolerance" in text
    data = json.loads(written.with_suffix(".json").read_text())
    assert {r["metric"] for r in data["rows"]} == {"patch_stats.mean", "patch_stats.std", "patch_stats.var_zero_mean"}
    flagged = {(r["job"], r["metric"]) for r in data["rows"] if r["flagged"]}
    assert flagged == {("torch_train", "patch_stats.mean")}
    by_report = ptybatch("compare", str(tmp_path / "reports" / "t"), str(tmp_path / "b" / "reports" / "t2"),
                         cwd=tmp_path)
    assert by_report.returncode == 0 and "loss" in by_report.stdout


def test_required_parity_failure_fails_the_phase(tmp_path: Path) -> None:
    body = _phase("xla", 0.9)
    body["parity"][0]["required"] = True
    result = ptybatch("submit", str(write_campaign(tmp_path, body)), cwd=tmp_path)
    assert result.returncode == 1
    inventory = (tmp_path / "reports" / "t" / "analysis" / "artifact_inventory.md").read_text()
    assert "required parity forward_patch_stats: patch_stats.mean out of tolerance" in inventory
    assert "[ptybatch] parity forward_patch_stats: patch_stats.mean out of tolerance (required)" in result.stdout
    assert "[ptybatch] tf_other: FAILED (xla: ImageProjectiveTransformV3 again)" in result.stdout
    assert "phase blocked" in result.stdout.splitlines()[-2], "the policy verdict closes the summary"


def test_compare_names_columns_and_files_by_run_and_lists_changed_params(tmp_path: Path) -> None:
    """Two runs of one campaign: columns and file names carry both run ids, the changed param is listed."""
    path = write_campaign(tmp_path, _phase("xla", 0.5))
    assert ptybatch("submit", str(path), cwd=tmp_path).returncode == 0
    assert ptybatch("submit", str(path), "--set", "translate=native", cwd=tmp_path).returncode == 0
    first, second = (p.parent.name for p in sorted((tmp_path / "reports" / ".ptybatch" / "t").glob("*/run.json")))
    result = ptybatch("compare", first, second, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = tmp_path / "reports" / "t" / "analysis" / f"compare_{first}_vs_{second}.md"
    text = written.read_text()
    assert f"# Compare {first} vs {second}" in text and f"| Job | {first} | {second} |" in text
    assert "Params that differ: `translate: xla → native`." in text
    again = ptybatch("compare", second, first, cwd=tmp_path)
    assert again.returncode == 0 and written.read_text() == text   # another pair never overwrites it
    assert (tmp_path / "reports" / "t" / "analysis" / f"compare_{second}_vs_{first}.md").is_file()


def test_report_plots_loss_curves_and_compare_bars(tmp_path: Path) -> None:
    """The charts are SVG drawn by the runner (no plotting library): linked from the Markdown, inline in HTML."""
    import xml.etree.ElementTree as ElementTree

    path = write_campaign(tmp_path, _phase("xla", 0.5))
    assert ptybatch("submit", str(path), cwd=tmp_path).returncode == 0
    analysis = tmp_path / "reports" / "t" / "analysis"
    svg = (analysis / "loss_curves.svg").read_text()
    root = ElementTree.fromstring(svg)   # well-formed, one line per train job, both in the legend
    assert len(list(root.iter("{http://www.w3.org/2000/svg}polyline"))) >= 2
    assert "torch_train (a)" in svg and "tf_train (b)" in svg
    assert "![training loss per epoch](loss_curves.svg)" in (analysis / "artifact_inventory.md").read_text()
    assert svg.split("<svg", 1)[1] in (analysis / "report.html").read_text(), "the HTML inlines the same chart"
    assert ptybatch("compare", str(path), str(path), cwd=tmp_path).returncode == 0
    assert not list(analysis.glob("compare_*_vs_*.svg")), "nothing differs: no chart of zero-height bars"
    (tmp_path / "b").mkdir()
    other = write_campaign(tmp_path / "b", {**_phase("xla", 0.7), "campaign": "t2"})
    assert ptybatch("submit", str(other), cwd=tmp_path / "b").returncode == 0
    assert ptybatch("compare", str(path), str(other), cwd=tmp_path).returncode == 0
    chart = next((tmp_path / "b" / "reports" / "t2" / "analysis").glob("compare_*_vs_*.svg"))
    ElementTree.fromstring(chart.read_text())
    assert "#d62728" in chart.read_text(), "patch_stats.mean is beyond the tolerance: a red bar"
    html = chart.with_suffix(".html").read_text()
    assert "<svg" in html and "beyond tolerance" in html


def test_compare_keeps_timing_apart_and_never_flags_it() -> None:
    from ptycho_batch.reports.compare import Side, compare, is_timing

    assert is_timing("epoch_time") and is_timing("train.duration") and is_timing("samples_per_s")
    assert not is_timing("patch_stats.mean") and not is_timing("amplitude.psnr")
    left = Side("a", "r1", Path("."), {"train": {"status": "", "metrics": {"epoch_time": 1.0, "loss": 1.0}}})
    right = Side("b", "r2", Path("."), {"train": {"status": "", "metrics": {"epoch_time": 1.5, "loss": 1.5}}})
    flagged = {row.metric: row.flagged for row in compare(left, right).rows}
    assert flagged == {"epoch_time": False, "loss": True}
