"""Synthetic runs for the render tests, the frame benchmark and the README screenshot.

Written with the real journal API (create_run, Run.write_state, plan.json from the Plan model), so the
viewer reads them exactly as it reads a live run; every state, blockers and metrics are represented.
"""

from __future__ import annotations

import time
from pathlib import Path

from ptycho_batch.campaign.plan import Plan, PlanJobs, PlannedJob, slugify
from ptycho_batch.campaign.spec import Resources
from ptycho_batch.journal.layout import utc_stamp
from ptycho_batch.journal.records import JobState, State
from ptycho_batch.journal.store import Run, create_run
from ptycho_batch.util.fsio import write_atomic

STATE_CYCLE = (State.COMPLETED, State.RUNNING, State.COMPLETED, State.FAILED, State.PENDING, State.SKIPPED,
               State.CANCELLED, State.RUNNING)
OBSERVE = {"patch_stats": r"Patch stats: mean=(?P<mean>\S+), std=(?P<std>\S+)",
           "intensity_scale": r"intensity_scale from bundle: (\S+)", "loss": r"loss=(\S+)"}
XLA_LINE = "XlaRuntimeError: INTERNAL: ptxas exited with non-zero exit code 65280"
BACKENDS = {"torch": "podman", "tf": "apptainer"}


def synthetic_run(root: Path, bases: dict[str, int], *, executor: str = "slurm", age_s: float = 754.0) -> Run:
    """A run of `bases` (campaign job -> number of matrix cells, 1 for a plain job) under `root`.

    Jobs take the states of STATE_CYCLE in turn (PENDING ones get no state file, as in a live run).
    """
    now = time.time()
    run = create_run(root / ".ptybatch" / "pinn_parity", f"{utc_stamp(now - age_s)}-demo")
    jobs = _planned_jobs(root, run, bases)
    plan = Plan(campaign="pinn_parity", title="PINN parity, phase C1 (gridsize 1)", source=str(root / "c1.yaml"),
                out=str(root), summary_dir=str(root / "reports"), run_dir=str(run.dir), policy_id="POLICY-C1",
                required_backends=["torch"], optional_backends=["tf"], runtimes=BACKENDS, jobs=PlanJobs(jobs),
                notes={}, data={})
    write_atomic(run.dir / "plan.json", plan.model_dump_json())
    run.update_info(run_id=run.id, campaign=plan.campaign, executor=executor, pid=0)
    for index, job in enumerate(jobs.values()):
        state = STATE_CYCLE[index % len(STATE_CYCLE)]
        if state != State.PENDING:
            run.write_state(job.slug, _job_state(job, state, index, now, executor))
    return run


def _planned_jobs(root: Path, run: Run, bases: dict[str, int]) -> dict[str, PlannedJob]:
    jobs: dict[str, PlannedJob] = {}
    for number, (base, cells) in enumerate(bases.items()):
        named = [b for b in BACKENDS if base.endswith("_" + b)]
        backend = named[0] if named else list(BACKENDS)[number % len(BACKENDS)]
        for cell in range(cells):
            name = base if cells == 1 else f"{base}[seed={cell}]"
            slug = slugify(name)
            jobs[name] = PlannedJob(
                name=name, slug=slug, base=base, backend=backend, stage=_stage(base, number),
                runtime=BACKENDS[backend], argv=["python", "-m", "ptycho_batch.workloads.torch_pinn"],
                params={"seed": cell}, env={}, pass_env=[], needs=[], log=str(root / "reports" / "cli" / f"{slug}.log"),
                report_dir=str(root / "reports"), workdir=str(run.workdir(slug)), observe=OBSERVE, artifacts={},
                expect={}, timeout_min=None, resources=Resources(), required=backend == "torch")
    return jobs


def _stage(base: str, number: int) -> str:
    stages = ("train", "infer", "compare")
    return next((stage for stage in ("simulate", *stages) if stage in base), stages[number % 3])


def _job_state(job: PlannedJob, state: State, index: int, now: float, executor: str) -> JobState:
    started = now - 30.0 - (index % 97) * 7.0
    record = JobState(name=job.name, state=state, backend=job.backend, stage=job.stage, attempt=1 + (index % 11 == 3),
                      started=None if state == State.SKIPPED else started, log=job.log)
    if state == State.SKIPPED:
        record.reason = "upstream train FAILED (xla)"
    else:
        if state != State.RUNNING:
            record.ended = started + 20.0 + index % 13
        if executor == "slurm":
            record.slurm_job_id, record.host = str(81000 + index), f"gpu{index % 4 + 1:02d}"
        else:
            record.pid = 20000 + index
        _write_log(Path(job.log), index, state)
    if state == State.COMPLETED:
        record.metrics = {"patch_stats.mean": 0.5 + index % 7 / 100, "patch_stats.std": 0.1,
                          "intensity_scale": 9.882118, "loss": 1e-3 * (1 + index % 5)}
    if state == State.FAILED:
        record.failure_class = "xla" if index % 2 else "oom"
        record.failure_line = (XLA_LINE if index % 2 else "torch.OutOfMemoryError: CUDA out of memory. "
                                                          "Tried to allocate 2.00 GiB")
        record.red_note = str(Path(job.report_dir) / "red" / f"blocked_{utc_stamp(now)}_{job.slug}.md")
    if state == State.CANCELLED:
        record.reason = "cancelled by the user"
    return record


def _write_log(path: Path, index: int, state: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["Loaded intensity_scale from bundle: 9.882118", "Patch stats: mean=0.5, std=0.1"]
    lines += [f"epoch {epoch}/50 loss={0.1 / epoch:.5f}" for epoch in range(1, 4 + index % 20)]
    if state == State.FAILED:
        lines.append(XLA_LINE)
    path.write_text("\n".join(lines) + "\n")
