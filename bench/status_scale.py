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

Live mode (`--live`, needs a SLURM cluster: `source /tmp/ptybatch-slurm/env.sh`): each `--jobs` count is
submitted for real as one held array (`sbatch --hold`, nothing runs) and, once `sacct` lists every task,
its SLURM poll is timed: the CPU time of `poll._refresh` in a fresh process (the plan already loaded;
`sacct` runs in a child and is not counted), and of a whole `status <run dir>` that polls (its `last_poll`
stamp removed first; this one counts `sacct`). With `--before DIR` the same by the older package, on the
same live run. The arrays are cancelled (`scancel`) at the end: the dev cluster keeps a cancelled job for
MinJobAge (300 s).

    python bench/status_scale.py --live [--jobs 10000] [--repeat 3] [--before DIR]
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


POLL_ONCE = """
import sys, time
from pathlib import Path
from ptycho_batch.executors.slurm import poll
from ptycho_batch.journal.store import Run
run = Run(Path(sys.argv[1]))
plan = run.plan
poll.accounting(run)
start = time.process_time()
poll._refresh(run, plan)
print(time.process_time() - start)
assert poll.__file__.startswith(sys.argv[2]), f"{poll.__file__} is not from {sys.argv[2]}"
"""


def live_run(folder: Path, count: int) -> Path:
    """A real SLURM run of one held array of `count` tasks (submitted with `--detach`: nothing waits)."""
    campaign = {"campaign": "live", "backends": {"host": {"runtime": "host"}},
                "jobs": {"cell": {"backend": "host", "matrix": {"seed": list(range(count))}, "command": ["true"],
                                  "resources": {"sbatch": {"hold": True}}}}}
    path = folder / "live.yaml"
    path.write_text(yaml.safe_dump(campaign))
    subprocess.run([sys.executable, "-m", "ptycho_batch", "submit", str(path), "--executor", "slurm", "--detach"],
                   cwd=folder, check=True, stdout=subprocess.DEVNULL, timeout=1800)
    run_dir = next((folder / "reports" / ".ptybatch" / "live").glob("*/run.json")).parent
    from ptycho_batch.executors.slurm.cluster import sacct_states
    from ptycho_batch.journal.store import Run

    arrays = [submission.job_id for submission in Run(run_dir).submissions().values()]
    deadline = time.time() + 300
    while len(sacct_states(arrays)) < count:  # slurmdbd learns of the tasks a moment later: until then a
        if time.time() > deadline:            # poll finds none of them and does other work
            raise SystemExit(f"sacct does not list the {count} tasks of {arrays} after 300 s")
        time.sleep(2)
    return run_dir


def poll_cpu(run_dir: Path, repeat: int, source: Path | None) -> float:
    """The lowest CPU time of one poll of the run, each in a fresh process (as each `status` polls once)."""
    interpreter, env = python(source)
    import ptycho_batch

    package_root = (source or Path(ptycho_batch.__file__).parents[1]).resolve()
    argv = [*interpreter, "-c", POLL_ONCE, str(run_dir), str(package_root)]
    # run from elsewhere than a checkout: `-c` imports from the current directory first
    return min(float(subprocess.run(argv, env=env, check=True, capture_output=True, text=True, timeout=600,
                                    cwd=tempfile.gettempdir()).stdout) for _ in range(repeat))


def polling_status(run_dir: Path, repeat: int, source: Path | None) -> Sample:
    """`status` of the run, each time past its poll interval so that it polls SLURM."""
    samples = []
    for _ in range(repeat):
        (run_dir / "slurm" / "last_poll").unlink(missing_ok=True)
        samples.append(best(["-m", "ptycho_batch", "status", str(run_dir)], 1, source))
    return Sample(min(s.cpu for s in samples), min(s.rss for s in samples))


def live(args: argparse.Namespace) -> None:
    from ptycho_batch.executors.slurm.cluster import scancel
    from ptycho_batch.journal.store import Run

    print(f"a live held array on the cluster; CPU seconds, best of {args.repeat}")
    for count in args.jobs:
        with tempfile.TemporaryDirectory() as folder:
            run_dir = live_run(Path(folder), count)
            try:
                for label, source in [("this package", None)] + ([(str(args.before), args.before)]
                                                                   if args.before else []):
                    poll = poll_cpu(run_dir, args.repeat, source)
                    status = polling_status(run_dir, args.repeat, source)
                    print(f"  {count:6d} tasks, {label}: one poll {poll:.3f} s (sacct not counted); status that "
                          f"polls {status.cpu:.3f} s (sacct counted), {status.rss:.0f} MB")
            finally:
                scancel(submission.job_id for submission in Run(run_dir).submissions().values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", type=Path, help="a folder holding an older ptycho_batch package (e.g. `git "
                        "archive main ptycho_batch | tar -x -C DIR`): also time its status of the run (old plan.json)")
    parser.add_argument("--live", action="store_true", help="time the SLURM poll of a live held array (see above)")
    args = parser.parse_args()
    if args.live:
        live(args)
        return
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
