"""One sbatch call: its options computed from one job alone, and one submission record that survives a crash.

Why fresh options per call: submitit's `update_parameters` accumulates, so one executor reused for a
campaign leaked a job's partition, memory, CPUs and dependency into every later job. Each call here builds
a new submitit executor from the job's own resources (user config defaults under the campaign's), and
passes `time=None` so that a job without a limit gets the partition's default, not submitit's 5 minutes.

Why one record per call, not per job: an array of 10,000 tasks must cost the file system a few files
(the journal's `Submission`: names, SLURM id, time, options); each task's own record is written by its
runner on the node. The record is written before sbatch without an id (an intent), its key passed as the
job's `--comment`, and rewritten with the id once sbatch answers. A submitter killed in between leaves an
intent: the next submit finds it in `squeue` by comment (adopting the id, and putting in place the pickle
a killed submitter had not moved yet) or drops it and submits its jobs again, so nothing is submitted twice.

Why an array's tasks share one pickle: submitit's runner on the node loads `<task id>_submitted.pkl`, and
submitit's own `batch` writes one per task, then renames it (a file created and written costs ~1 ms and
four metadata calls: at 1,000 tasks, most of a submit). Here one pickle runs `run_array_task`, which takes
its job from the task's index, and each task's path is a hard link to it (a copy where links fail).
"""

from __future__ import annotations

import io
import os
import time
import uuid
from collections.abc import Sequence
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import submitit
from submitit.core.utils import DelayedSubmission, FailedJobError, FailedSubmissionError, JobPaths

from ptycho_batch.campaign.spec import Scalar
from ptycho_batch.executors.slurm import cluster
from ptycho_batch.executors.slurm.node import run_array_task, run_on_node
from ptycho_batch.journal.records import Submission
from ptycho_batch.journal.store import Run
from ptycho_batch.util.errors import SlurmCommandError

# submitit always asks for a warning signal (USR2) this long before the limit; the node ignores it and
# stops the job at the limit itself (node.py)
SIGNAL_DELAY_S = 20
# sbatch messages that mean "the controller did not answer, or is too busy to take jobs now" (sbatch retried
# EAGAIN, then gave up), not "this job is refused": the jobs stay unsubmitted and the next submit goes on
_UNREACHABLE = ("Unable to contact slurm controller", "Socket timed out", "Connection refused",
                "Zero Bytes were transmitted", "temporarily unable", "Resource temporarily unavailable",
                "command not found")


class SbatchRefused(Exception):
    """sbatch refused this job (bad partition, more memory than any node has): its message, one line."""


def submit(run: Run, names: Sequence[str], *, job_name: str, options: dict[str, Scalar], after: Sequence[str],
           parallelism: int | None) -> list[str]:
    """One sbatch call for `names` (one job, or one array), recorded once for all of them: their SLURM ids,
    in order.

    Raises SbatchRefused when sbatch refuses the job, SlurmCommandError when the controller is unreachable.
    """
    key = f"ptybatch-{uuid.uuid4().hex[:16]}"
    record = Submission(names=list(names), array=len(names) > 1,
                        options={**options, **({"dependency": "afterok:" + ":".join(after)} if after else {})})
    run.write_submission(key, record)
    folder = _submitit_dir(run)
    folder.mkdir(parents=True, exist_ok=True)  # before sbatch: a job whose --output folder is missing fails
    executor = submitit.SlurmExecutor(folder=folder)
    parameters: dict[str, Any] = {"job_name": job_name, "time": None, "signal_delay_s": SIGNAL_DELAY_S,
                                  "comment": key, "additional_parameters": dict(options)}
    if after:
        parameters["dependency"] = "afterok:" + ":".join(after)
    if parallelism:
        parameters["array_parallelism"] = parallelism
    executor.update_parameters(**parameters)
    try:
        with redirect_stderr(io.StringIO()):  # submitit prints sbatch's complaint; the error carries it
            if len(names) == 1:
                ids = [executor.submit(run_on_node, str(run.dir), names[0]).job_id]
            else:
                ids = _submit_array(executor, folder / f"{key}.pkl", DelayedSubmission(
                    run_array_task, str(run.dir), list(names)), len(names))
    except (FailedJobError, FailedSubmissionError, OSError) as error:
        message = _last_line(str(error))
        if isinstance(error, OSError) or any(marker in message for marker in _UNREACHABLE):
            if isinstance(error, OSError):
                run.drop_submission(key)  # sbatch never ran; after a timeout the job may exist: keep the intent
            raise SlurmCommandError(["sbatch"], message) from None
        run.drop_submission(key)  # refused: nothing reached SLURM
        raise SbatchRefused(message) from None
    run.write_submission(key, record.model_copy(update={"job_id": ids[0].split("_")[0], "submitted": time.time()}))
    return ids


def _submit_array(executor: submitit.SlurmExecutor, shared: Path, delayed: DelayedSubmission, tasks: int,
                  ) -> list[str]:
    """What submitit's `batch` does for an array (the pickle, the sbatch, each task's pickle put in place once
    sbatch answers), with one pickle for all the tasks: each task's is a hard link to `shared`."""
    delayed.set_timeout(executor.parameters.get("time", 5), executor.max_num_timeout)  # as submitit does
    delayed.dump(shared)
    executor.parameters["map_count"] = tasks  # submitit's own way to make the sbatch file an array
    master = executor._submit_command(executor._submitit_command_str).job_id
    ids = [f"{master}_{index}" for index in range(tasks)]
    source = shared
    for job_id in ids:
        target = JobPaths(shared.parent, job_id=job_id).submitted_pickle
        try:
            os.link(source, target)
        except OSError:  # no hard links on this file system, or the most one file may have: a copy, linked on
            partial = target.with_name(f".{target.name}.tmp")
            delayed.dump(partial)
            os.replace(partial, target)  # a task never reads half a pickle
            source = target
    return ids


def adopt_leftovers(run: Run, job_name: str) -> dict[str, str]:
    """Jobs a killed submitter had sent to SLURM before recording their ids: job name -> SLURM id, found in
    squeue by the intent's comment and recorded now. Intents SLURM does not know are dropped (their jobs
    are submitted again)."""
    intents = {key: record for key, record in run.submissions().items() if record.job_id is None}
    if not intents:
        return {}
    queued = cluster.queued_by_comment(job_name)
    adopted: dict[str, str] = {}
    for key, record in intents.items():
        master = queued.get(key)
        if master is None:
            run.drop_submission(key)
            continue
        record = record.model_copy(update={"job_id": master, "submitted": time.time()})
        for name, job_id in zip(record.names, record.task_ids()):
            _ensure_pickle(run, name, job_id)
        run.write_submission(key, record)
        adopted.update(zip(record.names, record.task_ids()))
    return adopted


def _ensure_pickle(run: Run, name: str, job_id: str) -> None:
    """submitit moves a job's pickle into place after sbatch returns; a submitter killed in between leaves
    a job that waits 60 s for it and then fails. Put it there (what submitit would have written)."""
    pickle = JobPaths(_submitit_dir(run), job_id=job_id).submitted_pickle
    if not pickle.exists():
        pickle.parent.mkdir(parents=True, exist_ok=True)
        DelayedSubmission(run_on_node, str(run.dir), name).dump(pickle)


def _submitit_dir(run: Run) -> Path:
    """submitit's files, in one folder that exists before any sbatch call (not one per job id, which
    submitit creates only after sbatch returns: a submitter killed in between left jobs that could not
    open their output file)."""
    return run.dir / "slurm" / "submitit"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("---")]
    return lines[-1] if lines else "sbatch failed without a message"
