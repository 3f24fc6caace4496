"""The SLURM cluster the tests reach through $SLURM_CONF, and the helpers the SLURM executor calls on it.

CI starts the dev cluster (slurm/start-dev-cluster.sh /tmp/ptybatch-slurm) and exports its SLURM_CONF;
locally: `source DIR/env.sh` first. Without a reachable cluster these tests skip (fail in CI).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import requires
from dev_cluster import accounting_mode, dev_cluster_dir, start_now, wait_for

from ptycho_batch.executors.slurm.cluster import (
    SlurmState,
    accounting_available,
    expand_array_range,
    max_array_size,
    parse_elapsed,
    sacct_states,
    scancel,
    squeue_states,
)
from ptycho_batch.util.errors import SlurmCommandError


def sbatch(*args: str, cwd: Path, exit_code: int = 0) -> str:
    """Submit with `sbatch --parsable`; returns the job id. With --wait, sbatch exits with the job's code."""
    argv = ["sbatch", "--parsable", f"--chdir={cwd}", "--output=slurm-%A_%a.out", *args]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == exit_code, completed.stderr
    return completed.stdout.strip().split(";")[0]


def sacct_terminal(job_ids: list[str], expected_tasks: int) -> dict[str, SlurmState] | None:
    """sacct's states once `expected_tasks` records are all terminal (sacct lags submission a little)."""
    states = sacct_states(job_ids)
    done = len(states) == expected_tasks and all(state.terminal for state in states.values())
    return states if done else None


def test_sbatch_wait_job_runs_and_sacct_reports_completed(slurm: None, tmp_path: Path) -> None:
    requires("slurm", accounting_available(), "the cluster runs without accounting (sacct)")
    job_id = sbatch("--wait", "--wrap", "echo ran on $SLURMD_NODENAME > marker", cwd=tmp_path)

    assert (tmp_path / "marker").read_text().startswith("ran on ")
    states = wait_for(lambda: sacct_terminal([job_id], 1), 30, f"sacct to record job {job_id}")
    assert states[job_id].state == "COMPLETED"
    assert (states[job_id].exit_code, states[job_id].signal) == (0, 0)
    assert states[job_id].node


def test_afterok_chain_runs_in_order(slurm: None, tmp_path: Path) -> None:
    first = sbatch("--wrap", "sleep 1; echo first >> order", cwd=tmp_path)
    second = sbatch(f"--dependency=afterok:{first}", "--wrap", "echo second >> order", cwd=tmp_path)
    sbatch(f"--dependency=afterok:{second}", "--wrap", "echo third >> order", cwd=tmp_path)

    order = tmp_path / "order"  # polled rather than `sbatch --wait`, whose own back-off adds about 8 s
    lines = wait_for(lambda: _lines_when(order, 3), 60, "three jobs to write their line")
    assert lines == ["first", "second", "third"]


def _lines_when(path: Path, count: int) -> list[str] | None:
    lines = path.read_text().split() if path.exists() else []
    return lines if len(lines) >= count else None


def test_failed_upstream_leaves_dependent_pending_until_scancel(slurm: None, tmp_path: Path) -> None:
    """SLURM never runs nor ends an afterok dependent of a failed job: ptybatch must cancel it itself."""
    failing = sbatch("--wait", "--wrap", "exit 3", cwd=tmp_path, exit_code=3)
    dependent = sbatch(f"--dependency=afterok:{failing}", "--wrap", "touch must-not-run", cwd=tmp_path)

    stuck = wait_for(lambda: _reason_if(dependent, "DependencyNeverSatisfied"), 30, "the dependency to fail")
    assert stuck.state == "PENDING"
    scancel([dependent, "999999"])  # an unknown id is not an error
    cancelled = wait_for(lambda: _state_if(dependent, "CANCELLED"), 30, "the cancellation")
    assert cancelled.exit_code is None  # squeue does not know exit codes
    assert not (tmp_path / "must-not-run").exists()
    if accounting_available():
        states = wait_for(lambda: sacct_terminal([failing, dependent], 2), 30, "sacct records")
        assert (states[failing].state, states[failing].exit_code) == ("FAILED", 3)
        assert states[dependent].state == "CANCELLED"


def _reason_if(job_id: str, reason: str) -> SlurmState | None:
    state = squeue_states([job_id]).get(job_id)
    return state if state is not None and state.reason == reason else None


def _state_if(job_id: str, wanted: str) -> SlurmState | None:
    state = squeue_states([job_id]).get(job_id)
    return state if state is not None and state.state == wanted else None


def test_array_of_five_tasks_runs(slurm: None, tmp_path: Path) -> None:
    array = sbatch("--wait", "--array=0-4", "--output=task-%a.out", "--wrap", "echo $SLURM_ARRAY_TASK_ID",
                   cwd=tmp_path)

    assert [(tmp_path / f"task-{i}.out").read_text().strip() for i in range(5)] == [str(i) for i in range(5)]
    expected = {f"{array}_{i}" for i in range(5)}
    by_squeue = squeue_states([array])
    assert set(by_squeue) == expected and {s.state for s in by_squeue.values()} == {"COMPLETED"}
    if accounting_available():
        by_sacct = wait_for(lambda: sacct_terminal([array], 5), 30, "sacct to record the array")
        assert set(by_sacct) == expected and {s.state for s in by_sacct.values()} == {"COMPLETED"}


def test_throttled_array_pending_tasks_are_expanded_and_cancelled(slurm: None, tmp_path: Path) -> None:
    array = sbatch("--array=0-9%2", "--wrap", "sleep 30", cwd=tmp_path)
    expected = {f"{array}_{i}" for i in range(10)}
    try:
        running = wait_for(lambda: _when_running(squeue_states([array]), 2), 30, "two running tasks")
        assert set(running) == expected
        assert sum(s.state == "PENDING" for s in running.values()) == 8
        if accounting_available():
            seen = wait_for(lambda: _when_running(sacct_states([array]), 2), 30, "sacct to see the tasks")
            assert set(seen) == expected  # "123_[2-9%2]" came back as eight task ids
    finally:
        scancel([array])
    cancelled = wait_for(lambda: _when_all(squeue_states([array]), "CANCELLED", 10), 30, "the cancellation")
    assert set(cancelled) == expected


def test_array_cancelled_before_any_task_started_settles_every_task(slurm: None, tmp_path: Path) -> None:
    """sacct lists such an array under its bare master id (`123 CANCELLED`, no task range) for a while, later
    as a range: every asked-for task must read CANCELLED either way, or a follower waits on them for ever."""
    requires("slurm", accounting_available(), "the cluster runs without accounting (sacct)")
    array = sbatch("--hold", "--array=0-9", "--wrap", "sleep 30", cwd=tmp_path)
    tasks = [f"{array}_{i}" for i in range(10)]
    scancel([array])
    cancelled = wait_for(lambda: _when_all(sacct_states(tasks), "CANCELLED", 10), 30, "sacct to record the cancel")
    assert set(cancelled) == set(tasks)


def _when_running(states: dict[str, SlurmState], count: int) -> dict[str, SlurmState] | None:
    return states if sum(s.state == "RUNNING" for s in states.values()) == count else None


def _when_all(states: dict[str, SlurmState], wanted: str, count: int) -> dict[str, SlurmState] | None:
    return states if len(states) == count and all(s.state == wanted for s in states.values()) else None


def test_max_array_size_is_the_limit_sbatch_enforces(slurm: None, tmp_path: Path) -> None:
    limit = max_array_size()
    held = sbatch("--hold", f"--array=0-{limit - 1}", "--wrap", "true", cwd=tmp_path)
    scancel([held])
    refused = subprocess.run(["sbatch", "--hold", f"--array=0-{limit}", "--wrap", "true"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "array" in refused.stderr.lower()


def test_preempted_job_is_requeued_and_sacct_counts_its_attempts(slurm: None, tmp_path: Path) -> None:
    """The dev cluster's "urgent" partition preempts "debug": the victim is requeued under the same id."""
    requires("slurm", accounting_available(), "the cluster runs without accounting (sacct)")
    if subprocess.run(["sinfo", "--noheader", "--partition=urgent"], capture_output=True, text=True,
                      timeout=30).stdout.strip() == "":
        pytest.skip("needs the dev cluster's preempting partition 'urgent'")
    victim = sbatch("--partition=debug", "--exclusive", "--wrap", "echo run >> runs; sleep 5", cwd=tmp_path)
    wait_for(lambda: _state_if(victim, "RUNNING"), 90, "the victim to run (alone on the node)")
    sbatch("--partition=urgent", "--exclusive", "--wrap", "true", cwd=tmp_path)

    requeued = wait_for(lambda: _preempted_once(victim), 30, "sacct to record the preemption")
    assert requeued.state == "PENDING"
    start_now(victim)
    finished = wait_for(lambda: sacct_terminal([victim], 1), 60, "the second run to finish")[victim]
    assert (finished.state, finished.earlier_states, finished.attempts) == ("COMPLETED", ("PREEMPTED",), 2)
    assert (tmp_path / "runs").read_text().split() == ["run", "run"]


def _preempted_once(job_id: str) -> SlurmState | None:
    state = sacct_states([job_id]).get(job_id)
    return state if state is not None and state.earlier_states == ("PREEMPTED",) else None


def test_without_accounting_sacct_fails_fast_and_squeue_answers(slurm: None, tmp_path: Path) -> None:
    directory = dev_cluster_dir()
    if directory is None:
        pytest.skip("needs the dev cluster (SLURM_CONF from slurm/start-dev-cluster.sh) to switch accounting off")
    with accounting_mode(directory, "none"):
        assert not accounting_available()
        job_id = sbatch("--wait", "--wrap", "exit 4", cwd=tmp_path, exit_code=4)
        with pytest.raises(SlurmCommandError):
            sacct_states([job_id])
        assert squeue_states([job_id])[job_id].state == "FAILED"
    assert accounting_available()


@pytest.mark.parametrize(("text", "seconds"), [
    ("00:00:07", 7), ("1-02:03:04", 93784), ("05:06.500", 306), ("12:34", 754), ("INVALID", None), ("", None),
])
def test_parse_elapsed(text: str, seconds: int | None) -> None:
    assert parse_elapsed(text) == seconds


def test_expand_array_range() -> None:
    assert expand_array_range("7_[2-4,9%2]") == ["7_2", "7_3", "7_4", "7_9"]
    assert expand_array_range("7_[5]") == ["7_5"]
    assert expand_array_range("7_3") is None
    assert expand_array_range("7") is None


def test_requeued_job_reads_as_its_live_run_whatever_the_line_order() -> None:
    from ptycho_batch.executors.slurm.cluster import _parse_state_lines

    old = "77|FAILED|1:0|vm|00:00:05|None"
    new = "77|PENDING|0:0|None assigned|00:00:00|BeginTime"
    for text in (f"{old}\n{new}\n", f"{new}\n{old}\n"):
        state = _parse_state_lines(text, with_exit_code=True)["77"]
        assert (state.state, state.earlier_states) == ("PENDING", ("FAILED",))
    done = _parse_state_lines(f"{old}\n77|COMPLETED|0:0|vm|00:00:03|None\n", with_exit_code=True)["77"]
    assert (done.state, done.earlier_states) == ("COMPLETED", ("FAILED",))
    ended = _parse_state_lines("77|REQUEUED|0:0|vm|00:00:05|None\n77|FAILED|1:0|vm|00:00:00|None\n",
                               with_exit_code=True)["77"]
    assert (ended.state, ended.earlier_states) == ("FAILED", ("REQUEUED",)), "a REQUEUED record is history"
