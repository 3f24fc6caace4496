"""`ptybatch status` at scale: a SLURM run of one matrix job of `--jobs` tasks, all known from one array
submission record except a few that have records of their own: CPU time and peak RSS of fresh processes
(CPU, not wall time: the CI machine is shared, and wall time there measures the other load).

The run is written with the real API (engine prepare/freeze, Run.write_submission, Run.write_state) and is
marked finished, so `status` reads the journal and never asks a scheduler. Baselines, in the same run: a bare
interpreter importing what `status` imports (`python -c "import ptycho_batch.cli.main"`), and `status` of the
same run with its plan.json rewritten the older way (one full record a job, as runs before the compact
format have it), and with `--before DIR` the same by an older package (`git archive main ptycho_batch | tar
-x -C DIR`). Also prints the CPU time of loading each plan.json in this process (the old loader:
pydantic's JSON validation with the collector running). Target: under 0.5 s for 10,000 tasks.

    python bench/status_scale.py [--jobs 1000 10000] [--repeat 5] [--before DIR]
"""

from __future__ import annotations

import argparse
import os
import site
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import yaml

OWN_RECORDS = 100   # tasks that already wrote their own record (running or done)
BASELINE = ["-c", "import ptycho_batch.cli.main"]


def make_run(folder: Path, count: int) -> Path:
    """A frozen run of `count` cells submitted as one array; the first OWN_RECORDS have records of their own."""
    from ptycho_batch.engine.session import freeze, prepare
    from ptycho_batch.journal.records import JobState, State, Submission
    from ptycho_batch.journal.store import create_run

    campaign = {"campaign": "scale", "backends": {"host": {"runtime": "host"}},
                "jobs": {"cell": {"backend": "host", "matrix": {"seed": list(range(count))},
                                  "command": ["python", "train.py", "--seed", "{seed}"],
                                  "artifacts": {"model": {"path": "model.pt", "as": "model_{seed}.pt"}}}}}
    path = folder / "scale.yaml"
    path.write_text(yaml.safe_dump(campaign))
    prepared = prepare(path)
    run = create_run(prepared.campaign_dir, prepared.run_id)
    freeze(prepared, run, "slurm")
    names = list(prepared.plan.jobs)
    run.write_submission("array-0", Submission(names=names, job_id="81000", array=True, submitted=time.time()))
    for index, name in enumerate(names[:OWN_RECORDS]):
        job = prepared.plan.jobs[name]
        state = State.COMPLETED if index % 2 else State.RUNNING
        run.write_state(job.slug, JobState(name=name, state=state, backend=job.backend, stage=job.stage, attempt=1,
                                           started=time.time() - 60, ended=time.time() if index % 2 else None,
                                           slurm_job_id=f"81000_{index}", log=job.log))
    run.update_info(finished=time.time())
    return run.dir


def cpu_best(load: Callable[[bytes], object], text: bytes, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        load(text)
        times.append(time.process_time() - start)
    return min(times)


def python(source: Path | None) -> tuple[list[str], dict[str, str]]:
    """The interpreter line and environment that import ptycho_batch from `source` (default: as installed).

    `-S` leaves out the editable install's import hook, so the package on PYTHONPATH is the one imported."""
    if source is None:
        return [sys.executable], dict(os.environ)
    packages = ":".join(site.getsitepackages())
    return [sys.executable, "-S"], {**os.environ, "PYTHONPATH": f"{source.resolve()}:{packages}"}


class Sample(NamedTuple):
    cpu: float   # seconds, user + system
    rss: float   # MB, peak


def best(argv: list[str], repeat: int, source: Path | None = None) -> Sample:
    """The lowest CPU time and peak RSS of `repeat` runs (on a shared machine, wall time measures the load)."""
    interpreter, env = python(source)
    samples = []
    for _ in range(repeat):
        child = subprocess.Popen([*interpreter, *argv], stdout=subprocess.DEVNULL, env=env, cwd=tempfile.gettempdir())
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise SystemExit(f"{argv}: exit {child.returncode}")
        samples.append(Sample(usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024))
    return Sample(min(s.cpu for s in samples), min(s.rss for s in samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", type=Path, help="a folder holding an older ptycho_batch package (e.g. `git "
                        "archive main ptycho_batch | tar -x -C DIR`): also time its status of the run (old plan.json)")
    args = parser.parse_args()
    base = best(BASELINE, args.repeat)
    print(f"CPU seconds (user + system) and peak RSS, best of {args.repeat}; baseline `python {' '.join(BASELINE)}`: "
          f"{base.cpu:.3f} s, {base.rss:.0f} MB")
    from ptycho_batch.campaign.plan import Plan, load_plan

    for count in args.jobs:
        with tempfile.TemporaryDirectory() as folder:
            run_dir = make_run(Path(folder), count)
            status_argv = ["-m", "ptycho_batch", "status", str(run_dir)]
            compact = (run_dir / "plan.json").read_bytes()
            full = load_plan(compact).model_dump_json(indent=1).encode()
            status = best(status_argv, args.repeat)
            as_json = best([*status_argv, "--json"], args.repeat)
            new_load = cpu_best(new_loader, compact, args.repeat)
            full_load = cpu_best(new_loader, full, args.repeat)
            old_load = cpu_best(Plan.model_validate_json, full, args.repeat)
            (run_dir / "plan.json").write_bytes(full)
            old_status = best(status_argv, args.repeat)
            before = best(status_argv, args.repeat, args.before) if args.before else None
        verdict = "OK" if status.cpu < 0.5 else "OVER TARGET"
        print(f"  {count:6d} tasks: status {status.cpu:.3f} s ({status.cpu - base.cpu:+.3f} s over the imports) "
              f"-> {verdict} (< 0.5 s), {status.rss:.0f} MB; with an old full plan.json {old_status.cpu:.3f} s "
              f"({old_status.cpu - base.cpu:+.3f} s), {old_status.rss:.0f} MB; status --json {as_json.cpu:.3f} s")
        if before is not None:
            print(f"         status by {args.before}: {before.cpu:.3f} s ({before.cpu - base.cpu:+.3f} s over the "
                  f"imports), {before.rss:.0f} MB")
        print(f"         plan.json {len(compact) / 1e6:5.1f} MB (old {len(full) / 1e6:5.1f} MB), CPU to load: "
              f"{new_load:.3f} s (the old full one: {full_load:.3f} s; the old loader, the collector running: "
              f"{old_load:.3f} s, {old_load / new_load:.1f}x)")


def new_loader(text: bytes) -> object:
    """What Run.plan does: load_plan with the collector paused."""
    from ptycho_batch.campaign.plan import load_plan
    from ptycho_batch.util.bulk import collector_paused

    with collector_paused():
        return load_plan(text)


if __name__ == "__main__":
    main()
