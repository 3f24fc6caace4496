"""The dashboard rendered to a recording rich Console, over journals written with the real Run/JobState API."""

from __future__ import annotations

import io
import os
import re
import threading
import time
from pathlib import Path

from rich.console import Console

from ptycho_batch.journal.reader import FINAL_SWEEP, JournalCache
from ptycho_batch.journal.records import JobState, State
from ptycho_batch.journal.store import Run
from ptycho_batch.node.logtail import tail_lines
from ptycho_batch.tui.app import Dashboard
from ptycho_batch.tui.logs import find_job, follow
from ptycho_batch.tui.synthetic import synthetic_run
from ptycho_batch.tui.term import split_keys
from ptycho_batch.tui.watch import watch_plain
from ptycho_batch.util.errors import SpecError

SMALL = {"simulate": 1, "train": 1, "sweep": 8, "compare": 1}


def screen(dashboard: Dashboard, width: int = 160, height: int = 40) -> str:
    console = Console(width=width, height=height, record=True, file=io.StringIO(), color_system=None)
    console.print(dashboard.frame(width, height))
    return console.export_text()


def dashboard_of(run: Run) -> Dashboard:
    dashboard = Dashboard(run)
    dashboard.cache.poll()
    return dashboard


def line_of(text: str, job: str) -> str:
    """The table row that starts with `job`."""
    return next(line for line in text.splitlines() if line.lstrip().startswith(job + " "))


def test_expanded_group_shows_every_state_with_symbol_where_and_elapsed(tmp_path: Path) -> None:
    dashboard = dashboard_of(synthetic_run(tmp_path, {"sweep": 8}))
    collapsed = screen(dashboard)
    assert "▸ sweep (8)" in collapsed and "  [seed=0]" not in collapsed
    assert re.search(r"▶2 ✘1 ⊘1 ↷1 ·1 ✔2", collapsed)
    dashboard.handle("space")
    text = screen(dashboard)
    for state, symbol in (("COMPLETED", "✔"), ("RUNNING", "▶"), ("FAILED", "✘"), ("PENDING", "·"),
                          ("SKIPPED", "↷"), ("CANCELLED", "⊘")):
        assert f"{symbol} {state}" in text, state
    running = line_of(text, "[seed=1]")
    assert "▶ RUNNING" in running and "81001 gpu02" in running and re.search(r"\d+s", running)
    assert "upstream train FAILED" in line_of(text, "[seed=5]")  # a skipped job says why


def test_metrics_recorded_when_final_and_read_from_the_log_while_running(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, SMALL, executor="local")
    simulate = JournalCache(run).poll()
    recorded = next(s for s in simulate if s.name == "simulate").model_copy(update={"metrics": {"snr_db": 31.25}})
    run.write_state("simulate", recorded)
    dashboard = dashboard_of(run)
    text = screen(dashboard, width=220)
    assert "snr_db=31.25" in line_of(text, "simulate")        # COMPLETED: the journal's metrics
    train = line_of(text, "train")
    assert "pid 20001" in train and "epoch 4/50 loss=0.02500" in train
    assert "mean=0.5 std=0.1" in train                         # RUNNING: parsed from its log so far
    log = Path(dashboard.cache.states["train"].log or "")
    with log.open("a") as handle:
        handle.write("epoch 5/50 loss=0.00042\n")
    assert "epoch 5/50 loss=0.00042" in line_of(screen(dashboard, width=220), "train")


def test_blockers_panel_lists_failure_class_and_line_newest_first(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, SMALL)
    dashboard = dashboard_of(run)
    text = screen(dashboard, width=200)
    assert "blockers: 1" in text
    assert re.search(r"✘ sweep\[seed=1\]\s+xla\s+XlaRuntimeError: INTERNAL: ptxas", text)
    train = dashboard.cache.states["train"]
    run.write_state("train", train.model_copy(update={
        "state": State.FAILED, "failure_class": "oom", "ended": time.time(),
        "failure_line": "torch.OutOfMemoryError: CUDA out of memory"}))
    dashboard.cache.poll()
    panel = screen(dashboard, width=200).split("blockers: 2", 1)[1]
    assert re.search(r"✘ train\s+oom\s+torch.OutOfMemoryError.*\n.*✘ sweep\[seed=1\]", panel)


def test_jobs_sharing_one_red_note_are_one_blocker_row(tmp_path: Path) -> None:
    """A refused array's tasks point at its one red note: one row, as the report lists one blocker."""
    run = synthetic_run(tmp_path, {**SMALL, "sweep": 40})
    dashboard = dashboard_of(run)
    note = str(tmp_path / "red" / "blocked_20261201T000000Z_sweep_seed_0_array_of_40.md")
    for name, state in dashboard.cache.states.items():
        if name.startswith("sweep["):
            run.write_state(run.plan.jobs[name].slug, state.model_copy(update={
                "state": State.FAILED, "failure_class": "submit", "ended": 1.0, "red_note": note,
                "failure_line": "sbatch refused the job array: invalid partition specified: nope"}))
    dashboard.cache.poll(full=True)
    text = screen(dashboard, width=200)
    assert "blockers: 1" in text, text
    assert re.search(r"✘ sweep\[seed=0\] … sweep\[seed=39\] \(40 jobs\)\s+submit\s+sbatch refused", text), text


def test_no_blockers_panel_and_policy_on_track_when_nothing_failed(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, {"train": 1, "infer": 1})  # COMPLETED, RUNNING
    text = screen(dashboard_of(run))
    assert "blockers" not in text
    assert "▶ POLICY-C1: required backends [torch] on track: 1/1 completed" in text


def test_policy_off_track_then_the_reports_verdict_once_settled(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, SMALL)
    dashboard = dashboard_of(run)
    assert "✘ POLICY-C1: required backends [torch] off track: sweep[seed=1] FAILED; sweep[seed=3] SKIPPED" \
        in screen(dashboard)
    for name, state in dashboard.cache.states.items():
        if not state.final:
            run.write_state(dashboard.cache.plan.jobs[name].slug, state.model_copy(update={"state": State.CANCELLED}))
    settled = screen(dashboard_of(run), width=300)
    assert "✘ POLICY-C1: required backends [torch] did not pass (sweep[seed=1] FAILED" in settled


def test_matrix_collapses_and_only_the_rows_that_fit_are_shown(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, {"sweep": 1_500, **{f"job{i:04d}": 1 for i in range(500)}})
    dashboard = dashboard_of(run)
    text = screen(dashboard, height=30)
    assert "▸ sweep (1500)" in text and "job0000" in text and "job0100" not in text
    assert len(text.rstrip("\n").splitlines()) <= 30
    dashboard.handle("end")
    assert "job0499" in screen(dashboard, height=30)


def test_keys_select_open_log_and_cancel_after_confirmation(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, SMALL, executor="local")
    dashboard = dashboard_of(run)
    dashboard.handle("j")                                     # train (RUNNING)
    assert dashboard.row.key == "train"
    dashboard.handle("enter")
    log = screen(dashboard)
    assert "log: train ▶ RUNNING" in log and "epoch 4/50 loss=0.02500" in log
    dashboard.handle("esc")
    dashboard.handle("c")
    assert "cancel train? [y/n]" in screen(dashboard)
    dashboard.handle("n")
    assert not run.cancel_requested("train")
    dashboard.handle("c")
    dashboard.handle("y")
    assert run.cancel_requested("train")
    assert "cancel requested: train" in screen(dashboard)
    dashboard.handle("k")
    dashboard.handle("c")                                     # simulate is COMPLETED: nothing to confirm
    assert dashboard.mode == "table" and "nothing to cancel" in screen(dashboard)
    dashboard.handle("q")
    assert dashboard.quit


def test_plain_mode_prints_state_changes_without_control_codes(tmp_path: Path) -> None:
    # a local run nobody carries (no supervisor alive): the refresh settles its RUNNING job as LOST
    run = synthetic_run(tmp_path, {"train": 1, "infer": 1}, executor="local")
    out = io.StringIO()
    code = watch_plain(run, threading.Event(), 0.01, out)
    text = out.getvalue()
    assert "\x1b" not in text
    assert "[ptybatch] train: COMPLETED" in text and "[ptybatch] infer: LOST (lost)" in text
    assert "RUNNING" not in text
    assert code == 0 and "proceeding with torch-only evidence; tf deferred" in text.splitlines()[-1]


def test_journal_cache_rereads_only_changed_state_files(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, SMALL)
    cache = JournalCache(run)
    assert len(cache.poll()) == 10                            # 11 jobs, one PENDING without a file
    assert cache.poll() == []
    train = cache.states["train"].model_copy(update={"state": State.COMPLETED})
    run.write_state("train", train)
    os.utime(run.job_dir("train") / "state.json", ns=(1, 1))  # a new mtime even within one clock tick
    assert [s.name for s in cache.poll()] == ["train"] and cache.states["train"].state == "COMPLETED"
    simulate = cache.states["simulate"].model_copy(update={"attempt": 2})  # a final job: checked in turns
    run.write_state("simulate", simulate)
    os.utime(run.job_dir("simulate") / "state.json", ns=(2, 2))
    polls = next(n for n in range(1, FINAL_SWEEP + 1) if cache.poll())
    assert 1 <= polls <= FINAL_SWEEP and cache.states["simulate"].attempt == 2


def test_escape_sequences_become_key_names() -> None:
    assert split_keys("j\x1b[Bq\x1bOA\r \x1b") == ["j", "down", "q", "up", "enter", "space", "esc"]


def test_logs_find_jobs_tail_and_follow(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, SMALL)
    plan = JournalCache(run).plan
    assert find_job(plan, "sim") == "simulate" and find_job(plan, "sweep_seed_3") == "sweep[seed=3]"
    for token, message in (("sweep", "ambiguous"), ("trian", "did you mean train")):
        try:
            find_job(plan, token)
        except SpecError as error:
            assert message in error.problems[0]
        else:
            raise AssertionError(f"{token} should not resolve")
    state = JournalCache(run).poll()[0]
    log = Path(state.log or "")
    log.write_text("x" * 200_000 + "\n" + "\n".join(f"line {i}" for i in range(5)) + "\n")
    assert tail_lines(log, 2) == ["line 3", "line 4"]
    copied = io.BytesIO()
    follow(lambda: JobState(name=state.name, state="COMPLETED", log=str(log)), plan, copied, poll=0.01)
    assert copied.getvalue() == log.read_bytes()


def test_a_pending_row_shows_nothing_from_an_earlier_run(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, {"sweep": 8})
    pending = next(j for j in run.plan.jobs.values() if run.read_state(j.slug) is None)
    Path(pending.log).parent.mkdir(parents=True, exist_ok=True)
    Path(pending.log).write_text("tf2xla conversion failed while converting an old run\n")  # the previous run's log
    dashboard = dashboard_of(run)
    dashboard.handle("space")
    row = line_of(screen(dashboard, width=220), pending.name[len(pending.base):])
    assert "· PENDING" in row and "tf2xla" not in row


def test_completed_with_warnings_is_shown_in_the_row(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, SMALL, executor="local")
    simulate = next(s for s in JournalCache(run).poll() if s.name == "simulate")
    run.write_state("simulate", simulate.model_copy(update={"warnings": ["patch_stats: no match"]}))
    assert "completed with warnings: patch_stats: no match" in line_of(screen(dashboard_of(run), width=220),
                                                                       "simulate")
