"""Thin, typed calls to the SLURM client commands the SLURM executor needs.

Why a module of its own: the executor and the poller must never hang on the scheduler nor overload it.
Every call here is one subprocess with an argv list and a timeout, and state queries take many job ids
at once (one `sacct` per poll for the whole campaign, as Snakemake's SLURM plugin does), so the
callers' back-off policy is the only thing deciding how often the scheduler is asked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ptycho_batch.util.errors import SlurmCommandError

DEFAULT_TIMEOUT_S = 30.0
# Slurm's MaxArraySize when a cluster does not set it.
DEFAULT_MAX_ARRAY_SIZE = 1001
# States after which a job (or array task) never changes again, unless requeued by someone.
TERMINAL_STATES = frozenset({
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
    "PREEMPTED", "REVOKED", "TIMEOUT",
})
# states of a run that is still in the scheduler's hands; REQUEUED and PREEMPTED are records of ended runs
LIVE_STATES = frozenset({"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING", "SIGNALING",
                         "STAGE_OUT", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"})
_SACCT_FIELDS = ("JobID", "State", "ExitCode", "NodeList", "Elapsed", "Reason")
_SQUEUE_FORMAT = "%i|%T|%N|%M|%r"  # the same fields as sacct's, less the exit code squeue lacks
_ALREADY_ENDED = ("Invalid job id", "already completing or completed")  # scancel's harmless complaints
_ARRAY_RANGE = re.compile(r"^(?P<job>\d+)_\[(?P<ranges>[\d,\-]+)(?:%\d+)?\]$")


@dataclass(frozen=True)
class SlurmState:
    """What the scheduler says about one job or one array task (`123` or `123_4`)."""

    job_id: str
    state: str  # base state name, e.g. COMPLETED; "CANCELLED by 0" becomes CANCELLED
    exit_code: int | None = None  # None when the source does not know it (squeue)
    signal: int | None = None
    node: str | None = None
    elapsed_s: int | None = None
    reason: str | None = None  # e.g. Dependency, DependencyNeverSatisfied, JobArrayTaskLimit, BeginTime
    # states of earlier runs of a requeued job, oldest first (sacct only), e.g. ("PREEMPTED",)
    earlier_states: tuple[str, ...] = ()

    @property
    def attempts(self) -> int:
        return len(self.earlier_states) + 1

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


def run_slurm_command(argv: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run a client command; a missing binary or a timeout becomes SlurmCommandError, never a hang."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError as error:
        raise SlurmCommandError(argv, "command not found") from error
    except subprocess.TimeoutExpired as error:
        raise SlurmCommandError(argv, f"no answer within {timeout_s:g} s") from error


def _checked(argv: Sequence[str], timeout_s: float) -> str:
    completed = run_slurm_command(argv, timeout_s)
    if completed.returncode != 0:
        raise SlurmCommandError(argv, f"exit {completed.returncode}: {completed.stderr.strip()}")
    return completed.stdout


def sbatch_available(timeout_s: float = 10.0) -> bool:
    """True when `sbatch` is on PATH and the controller answers (`sinfo` succeeds)."""
    if shutil.which("sbatch") is None:
        return False
    try:
        return run_slurm_command(["sinfo", "--noheader", "--format=%P"], timeout_s).returncode == 0
    except SlurmCommandError:
        return False


def cluster_config(timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, str]:
    """The controller's running configuration (`scontrol show config`) as name -> value."""
    config: dict[str, str] = {}
    for line in _checked(["scontrol", "show", "config"], timeout_s).splitlines():
        name, separator, value = line.partition("=")
        if separator and name.strip() and " " not in name.strip():
            config[name.strip()] = value.strip()
    return config


def max_array_size(timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
    """MaxArraySize: array task indices must be below it, so arrays larger than it are split."""
    value = cluster_config(timeout_s).get("MaxArraySize", "")
    return int(value) if value.isdigit() else DEFAULT_MAX_ARRAY_SIZE


def accounting_available(timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """True when `sacct` answers; it fails when the cluster runs without accounting storage.
    Raises SlurmCommandError when sacct is not installed or does not answer (that says nothing either way)."""
    argv = ["sacct", "--noheader", "--parsable2", "--allocations", "--jobs=1", "--format=JobID"]
    return run_slurm_command(argv, timeout_s).returncode == 0


def sacct_states(job_ids: Iterable[str], timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, SlurmState]:
    """States of many jobs in ONE `sacct` call, keyed by job id or array task id (`123_4`).

    Pass plain ids and array task ids: an array is asked for by its master id (`123` answers for all of
    `123_*`). Pending array tasks that sacct folds into one `123_[5-999%10]` line are expanded; a task's own
    line wins over its range. An array whose pending remainder was cancelled before any of it started is
    listed under the bare master id (`123 CANCELLED`): each asked-for task without a line of its own takes
    that ended state. Requeued jobs (preemption, timeout with checkpointing) keep their id: every run is
    asked for (`--duplicates`), the latest gives the state and the earlier ones `earlier_states`.
    A job submitted a moment ago may be missing: slurmctld reports to slurmdbd asynchronously,
    so a missing id means "not known yet", not "gone". The Reason of a pending job is as of its last
    recorded change (a stale "Dependency" where squeue says DependencyNeverSatisfied).
    Raises SlurmCommandError when sacct fails.
    """
    asked = set(job_ids)
    ids = sorted({job_id.split("_")[0] for job_id in asked})
    if not ids:
        return {}
    argv = ["sacct", "--noheader", "--parsable2", "--allocations", "--duplicates", f"--jobs={','.join(ids)}",
            f"--format={','.join(_SACCT_FIELDS)}"]
    states = _parse_state_lines(_checked(argv, timeout_s), with_exit_code=True)
    for task_id in sorted(asked - states.keys()):
        master = states.get(task_id.split("_")[0])
        if "_" in task_id and master is not None and master.terminal:
            states[task_id] = replace(master, job_id=task_id, node=None, elapsed_s=None)
    return states


def squeue_states(job_ids: Iterable[str], timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, SlurmState]:
    """The fallback without accounting: states from `squeue`, one line per array task.

    squeue knows a job only while it is queued, running, or finished less than MinJobAge ago
    (300 s by default); absent ids are simply missing from the result, and exit codes are unknown
    (the job runner's own exit record has to tell how a job ended).
    """
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    argv = ["squeue", "--noheader", "--array", "--states=all", f"--jobs={','.join(ids)}",
            f"--format={_SQUEUE_FORMAT}"]
    completed = run_slurm_command(argv, timeout_s)
    if completed.returncode != 0:
        # squeue fails instead of printing nothing when none of the ids is known any more
        if "Invalid job id" in completed.stderr:
            return {}
        raise SlurmCommandError(argv, f"exit {completed.returncode}: {completed.stderr.strip()}")
    return _parse_state_lines(completed.stdout, with_exit_code=False)


def queued_by_comment(job_name: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, str]:
    """Jobs named `job_name` that squeue still knows: comment -> job id (an array's master id)."""
    argv = ["squeue", "--noheader", "--states=all", f"--name={job_name}", "--format=%F|%k"]
    found: dict[str, str] = {}
    for line in _checked(argv, timeout_s).splitlines():
        master, _, comment = line.strip().partition("|")
        if master and comment:
            found[comment] = master
    return found


def time_left(job_id: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> int | None:
    """Seconds until the job's time limit (squeue %L), None when it has none or is not known."""
    argv = ["squeue", "--noheader", f"--jobs={job_id}", "--format=%L"]
    return parse_elapsed(_checked(argv, timeout_s).strip())


def scancel(job_ids: Iterable[str], timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Cancel jobs or array tasks; ids that already ended are not an error (the wish is met)."""
    ids = sorted(set(job_ids))
    if not ids:
        return
    argv = ["scancel", *ids]
    completed = run_slurm_command(argv, timeout_s)
    problems = [line for line in completed.stderr.splitlines()
                if line.strip() and not any(harmless in line for harmless in _ALREADY_ENDED)]
    if completed.returncode != 0 and problems:
        raise SlurmCommandError(argv, f"exit {completed.returncode}: {' / '.join(problems)}")


def _parse_state_lines(text: str, with_exit_code: bool) -> dict[str, SlurmState]:
    exact: dict[str, SlurmState] = {}
    from_ranges: dict[str, SlurmState] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if with_exit_code:
            job_id, state_text, exit_code, node, elapsed, reason = line.split("|", 5)
        else:
            job_id, state_text, node, elapsed, reason = line.split("|", 4)
            exit_code = ""
        code, signal = _parse_exit_code(exit_code)
        state = SlurmState(job_id=job_id, state=state_text.split(" ")[0], exit_code=code, signal=signal,
                           node=_node(node), elapsed_s=parse_elapsed(elapsed), reason=_reason(reason))
        task_ids = expand_array_range(job_id)
        if task_ids is not None:
            from_ranges.update((task_id, replace(state, job_id=task_id)) for task_id in task_ids)
        elif job_id in exact:  # another run of a requeued job: the live run, if any, is the current one
            known = exact[job_id]
            if known.state not in LIVE_STATES or state.state in LIVE_STATES:
                exact[job_id] = replace(state, earlier_states=(*known.earlier_states, known.state))
            else:
                exact[job_id] = replace(known, earlier_states=(*known.earlier_states, state.state))
        else:
            exact[job_id] = state
    return {**from_ranges, **exact}


def expand_array_range(job_id: str) -> list[str] | None:
    """`123_[1-3,7%2]` -> ["123_1", "123_2", "123_3", "123_7"]; None for a plain id or task id."""
    match = _ARRAY_RANGE.match(job_id)
    if match is None:
        return None
    task_ids: list[str] = []
    for part in match["ranges"].split(","):
        first, _, last = part.partition("-")
        task_ids.extend(f"{match['job']}_{index}" for index in range(int(first), int(last or first) + 1))
    return task_ids


def parse_elapsed(text: str) -> int | None:
    """Seconds from SLURM's `[D-]HH:MM:SS`, `MM:SS` or `MM:SS.mmm`; None when not a duration."""
    days, _, clock = text.strip().rpartition("-")
    parts = clock.split(":")
    try:
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + float(part)
        return int(seconds + 86400 * int(days or 0)) if 1 < len(parts) <= 3 else None
    except ValueError:
        return None


def _parse_exit_code(text: str) -> tuple[int | None, int | None]:
    code, _, signal = text.partition(":")
    return (int(code) if code.isdigit() else None, int(signal) if signal.isdigit() else None)


def _node(text: str) -> str | None:
    return None if text in ("", "None assigned", "(null)") else text


def _reason(text: str) -> str | None:
    return None if text in ("", "None") else text
