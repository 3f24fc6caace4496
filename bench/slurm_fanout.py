"""SLURM fan-out on the dev cluster: an N-task matrix campaign by `ptybatch submit --detach` against submitit's
own `AutoExecutor.map_array` of N tasks, in the same run.

Both sides submit the same held array (`--hold`, array parallelism 8, one submitit folder), each as a fresh
Python process, the two sides alternating: wall time and CPU time (user + system of the process and its
children: sbatch, scontrol), each the best of `--repeat` (CPU time is what a loaded machine distorts
least), and when strace is installed the metadata system calls (`strace -f -c -e trace=%file`: every
call that names a path, as a shared file system's metadata server sees them) with the ratio
ptybatch / submitit; the targets are 1.5x (time) and 1.2x (calls). Then the time of `ptybatch status`
of the N-task run (target < 0.5 s), the sbatch calls ptybatch made and the `sacct`/`squeue` calls of
one poll (counted by shims first on PATH; the target is 1 in total).
Every array submitted is cancelled (scancel). Needs SLURM_CONF (source <dev cluster>/env.sh).
`--package DIR` runs ptybatch from another copy of the package (e.g. an older commit's, from
`git archive <commit> ptycho_batch | tar -x -C DIR`), to compare two versions in one session.
Usage: python bench/slurm_fanout.py [--tasks 1000 10000] [--repeat 3] [--package DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

COUNTED = ("sbatch", "sacct", "squeue")
PARALLELISM = 8
SUBMITIT = """
import sys, submitit
executor = submitit.AutoExecutor(folder=sys.argv[1], cluster="slurm")
executor.update_parameters(slurm_array_parallelism={parallelism}, slurm_additional_parameters={{"hold": True}})
jobs = executor.map_array(abs, range(int(sys.argv[2])))
print(jobs[0].job_id.split("_")[0])
"""


def make_shims(folder: Path, log: Path) -> dict[str, str]:
    """Wrappers that log each call of sbatch/sacct/squeue, then run the real command."""
    folder.mkdir()
    for name in COUNTED:
        real = shutil.which(name)
        if real is None:
            raise SystemExit(f"{name} not found: start the dev cluster and source its env.sh")
        shim = folder / name
        shim.write_text(f"#!/bin/sh\necho {name} >> {log}\nexec {real} \"$@\"\n")
        shim.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}"}


def calls(log: Path) -> dict[str, int]:
    lines = log.read_text().split() if log.exists() else []
    return {name: lines.count(name) for name in COUNTED}


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str, float]:
    """Wall seconds, stdout, and CPU seconds (user + system) of `argv` and the children it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, done.stdout, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def metadata_calls(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, dict[str, int], str]:
    """Path-naming system calls of `argv` and its children: total, the busiest four by name, and its stdout."""
    report = cwd.parent / f"strace-{time.monotonic_ns()}.txt"
    done = subprocess.run(["strace", "-f", "-c", "-e", "trace=%file", "-o", str(report), *argv], cwd=cwd, env=env,
                          check=True, capture_output=True, text=True)
    counts: dict[str, int] = {}
    for line in report.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and re.fullmatch(r"[\d.]+", fields[0]) and fields[-1] != "total":
            counts[fields[-1]] = int(fields[3])
    busiest = dict(sorted(counts.items(), key=lambda item: -item[1])[:4])
    return sum(counts.values()), busiest, done.stdout


class Side:
    """One way of submitting N held tasks: a fresh folder per submission, its SLURM ids kept to cancel."""

    def __init__(self, root: Path, tasks: int, env: dict[str, str]) -> None:
        self.root, self.tasks, self.env, self.count = root, tasks, env, 0
        self.ids: list[str] = []

    def folder(self) -> Path:
        self.count += 1
        folder = self.root / f"{self.tasks}-{self.count}"
        folder.mkdir(parents=True)
        return folder

    def cancel(self) -> None:
        if self.ids:
            subprocess.run(["scancel", *self.ids], check=False, capture_output=True)
        self.ids.clear()


class Submitit(Side):
    def argv(self, folder: Path) -> list[str]:
        return [sys.executable, "-c", SUBMITIT.format(parallelism=PARALLELISM), str(folder / "submitit"),
                str(self.tasks)]

    def collect(self, folder: Path, stdout: str) -> None:
        self.ids.append(stdout.split()[-1])


class Ptybatch(Side):
    def argv(self, folder: Path) -> list[str]:
        campaign = {"campaign": "fanout", "backends": {"host": {"runtime": "host"}},
                    "jobs": {"noop": {"backend": "host", "matrix": {"i": list(range(self.tasks))},
                                      "command": ["true"], "array_parallelism": PARALLELISM,
                                      "resources": {"sbatch": {"hold": True}}}}}
        (folder / "fanout.yaml").write_text(yaml.safe_dump(campaign))
        return [sys.executable, "-m", "ptycho_batch", "submit", str(folder / "fanout.yaml"), "--executor", "slurm",
                "--detach"]

    def collect(self, folder: Path, stdout: str) -> None:
        for record in (folder / "reports" / ".ptybatch" / "fanout").glob("*/submitted/*.json"):
            self.ids.append(str(json.loads(record.read_text())["job_id"]))


def submit_once(side: Submitit | Ptybatch) -> tuple[float, float, Path]:
    """One submission: wall and CPU seconds, and its folder; its array is cancelled at once."""
    folder = side.folder()
    wall, stdout, cpu = timed(side.argv(folder), folder, side.env)
    side.collect(folder, stdout)
    side.cancel()
    return wall, cpu, folder


def traced(side: Submitit | Ptybatch) -> tuple[int, dict[str, int]]:
    """One traced submission's metadata calls: the total and the busiest four."""
    folder = side.folder()
    total, busiest, stdout = metadata_calls(side.argv(folder), folder, side.env)
    side.collect(folder, stdout)
    side.cancel()
    return total, busiest


def status_time(folder: Path, env: dict[str, str], log: Path) -> tuple[float, float, dict[str, int]]:
    """`ptybatch status` of the run in `folder`: the first (which polls SLURM) and a second one, and the
    scheduler calls of the first."""
    campaign = str(folder / "fanout.yaml")
    log.unlink(missing_ok=True)
    first = timed([sys.executable, "-m", "ptycho_batch", "status", campaign], folder, env)[0]
    polled = calls(log)
    second = timed([sys.executable, "-m", "ptycho_batch", "status", campaign], folder, env)[0]
    return first, second, polled


def bench(tasks: int, repeat: int, root: Path, env: dict[str, str], log: Path, strace: bool) -> None:
    theirs = Submitit(root / "submitit", tasks, os.environ.copy())
    ours = Ptybatch(root / "ptybatch", tasks, env)
    wall = {"theirs": float("inf"), "ours": float("inf")}
    cpu = dict(wall)
    try:
        log.unlink(missing_ok=True)
        for _ in range(repeat):  # the two sides alternate, so that a change of load meets both
            for label, side in (("theirs", theirs), ("ours", ours)):
                seconds, cpu_s, folder = submit_once(side)
                wall[label], cpu[label] = min(wall[label], seconds), min(cpu[label], cpu_s)
        counted = {label: traced(side) for label, side in (("theirs", theirs), ("ours", ours))} if strace else {}
        sbatch_calls = calls(log)["sbatch"] // (repeat + strace)
        folder = ours.folder()  # a run kept (held) for `status`
        timed(ours.argv(folder), folder, env)
        ours.collect(folder, "")
        first, second, polled = status_time(folder, env, log)
    finally:
        theirs.cancel()
        ours.cancel()
    print(f"{tasks}-task array on the dev cluster (best of {repeat}, alternated):")
    print(f"  submitit AutoExecutor.map_array {wall['theirs']:8.3f} s wall {cpu['theirs']:8.3f} s CPU")
    print(f"  ptybatch submit --detach        {wall['ours']:8.3f} s wall {cpu['ours']:8.3f} s CPU")
    print(f"  ratio wall {wall['ours'] / wall['theirs']:5.2f}x (target <= 1.5x), "
          f"CPU {cpu['ours'] / cpu['theirs']:5.2f}x")
    if counted:
        (their_calls, their_top), (our_calls, our_top) = counted["theirs"], counted["ours"]
        print(f"  metadata calls: submitit {their_calls}  {their_top}")
        print(f"                  ptybatch {our_calls}  {our_top}")
        print(f"                  ratio {our_calls / their_calls:5.2f}x (target <= 1.2x)")
    print(f"  sbatch calls by ptybatch: {sbatch_calls}")
    print(f"  ptybatch status of the {tasks}-task run: {first:.3f} s (polls SLURM: sacct {polled['sacct']}, "
          f"squeue {polled['squeue']}), again {second:.3f} s (target < 0.5 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--package", type=Path, metavar="DIR",
                        help="run ptybatch from DIR/ptycho_batch instead of the installed package")
    args = parser.parse_args()
    strace = shutil.which("strace") is not None
    if not strace:
        print("strace not installed: no metadata call counts (apt-get install strace)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        log = root / "calls.log"
        env = make_shims(root / "shims", log)
        if args.package is not None:
            env["PYTHONPATH"] = str(args.package.resolve())
        for tasks in args.tasks:
            bench(tasks, args.repeat, root, env, log, strace)


if __name__ == "__main__":
    main()
