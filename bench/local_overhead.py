"""Per-job overhead of the local executor: 200 no-op jobs through `ptybatch submit` vs `xargs -P <cores>`.

Both are measured in the same run on the same machine; the figure is the ratio of wall times (best of
`--repeat`, runs interleaved). CPU time (user + system) of each whole process tree is shown too: this
process becomes a subreaper, so the run supervisor, detached from the submitter, is counted when it exits.
The same campaign's `ptybatch validate` (interpreter start, imports, campaign model, planning: what every
submit does before its first job, and nothing else) is measured too, and the floor it sets is printed: a
submit also starts the same 200 processes xargs does, on the same cores, so it cannot take less than
validate + xargs. When snakemake is installed, the same 200 jobs as a Snakefile run with
`snakemake -c <cores>` too. With `--before DIR` (a folder holding an older package:
`git archive <rev> ptycho_batch | tar -x -C DIR`), that package runs the same submit in the same session.
Usage: python bench/local_overhead.py [--jobs 200] [--repeat 3] [--before DIR]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import shutil
import site
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import yaml

PR_SET_CHILD_SUBREAPER = 36
ROOT = Path(__file__).resolve().parents[1]   # this checkout, holding ptycho_batch/


class Sample(NamedTuple):
    wall: float   # seconds
    cpu: float    # seconds, user + system of the whole process tree


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None) -> Sample:
    """Wall time until `argv` exits; CPU time once every process it left behind has exited too."""
    cpu = children_cpu()
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    while True:   # orphans (a detached supervisor) are re-parented here: wait for them
        try:
            os.wait()
        except ChildProcessError:
            break
    return Sample(wall, children_cpu() - cpu)


def campaign_file(folder: Path, count: int) -> Path:
    campaign = {"campaign": "bench", "backends": {"host": {"runtime": "host"}},
                "jobs": {"noop": {"backend": "host", "matrix": {"i": list(range(count))}, "command": ["true"]}}}
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(campaign))
    return path


def ptybatch_run(folder: Path, count: int, cores: int, source: Path | None = None) -> Sample:
    path = campaign_file(folder, count)
    shutil.rmtree(folder / "reports", ignore_errors=True)
    argv = [sys.executable, "-m", "ptycho_batch", "submit", str(path), "--jobs", str(cores)]
    if source is None:
        return timed(argv, folder)
    # `-S` leaves out the editable install's import hook, so the package on PYTHONPATH is the one imported
    packages = ":".join(site.getsitepackages())
    return timed([argv[0], "-S", *argv[1:]], folder, env={**os.environ, "PYTHONPATH": f"{source.resolve()}:{packages}"})


def validate_run(folder: Path, count: int, cores: int) -> Sample:
    """Start-up and planning only: the part of a submit before its first job."""
    return timed([sys.executable, "-m", "ptycho_batch", "validate", str(campaign_file(folder, count))], folder)


def xargs_run(folder: Path, count: int, cores: int) -> Sample:
    return timed(["xargs", "-P", str(cores), "-n", "1", "true"], folder, "\n".join(map(str, range(count))) + "\n")


def snakemake_run(folder: Path, count: int, cores: int) -> Sample:
    (folder / "Snakefile").write_text(
        f"rule all:\n    input: expand('done/{{i}}', i=range({count}))\n"
        "rule noop:\n    output: 'done/{i}'\n    shell: 'true && touch {output}'\n")
    shutil.rmtree(folder / "done", ignore_errors=True)
    shutil.rmtree(folder / ".snakemake", ignore_errors=True)
    return timed(["snakemake", "-c", str(cores), "--quiet"], folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, help="a folder holding an older ptycho_batch package: its submit "
                        "of the same jobs is measured too")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    runners: dict[str, Callable[[Path, int, int], Sample]] = {"xargs": xargs_run, "ptybatch": ptybatch_run,
                                                               "validate": validate_run}
    if args.before:   # both packages started alike (`-S`, PYTHONPATH), so only the package differs
        runners["ptybatch"] = lambda folder, count, cores: ptybatch_run(folder, count, cores, ROOT)
        runners["before"] = lambda folder, count, cores: ptybatch_run(folder, count, cores, args.before)
    if shutil.which("snakemake"):
        runners["snakemake"] = snakemake_run
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        print("(no subreaper here: a detached supervisor's CPU is not counted)")
    samples: dict[str, list[Sample]] = {name: [] for name in runners}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):   # interleaved: a change in the machine's load hits every runner alike
            for name, run in runners.items():
                samples[name].append(run(Path(tmp), args.jobs, cores))
    best = {name: Sample(min(s.wall for s in runs), min(s.cpu for s in runs)) for name, runs in samples.items()}
    print(f"{args.jobs} no-op jobs, {cores} cores, best of {args.repeat} (wall; CPU of the whole process tree):")
    for name, sample in best.items():
        print(f"  {name:10s} {sample.wall:7.3f} s   {sample.wall / best['xargs'].wall:6.1f}x xargs   "
              f"{1000 * sample.wall / args.jobs:6.2f} ms/job   CPU {sample.cpu:6.3f} s "
              f"({sample.cpu / best['xargs'].cpu:5.1f}x xargs)")
    ratio = best["ptybatch"].wall / best["xargs"].wall
    floor = (best["validate"].wall + best["xargs"].wall) / best["xargs"].wall
    print(f"floor of any submit here: validate + xargs = {floor:.1f}x xargs (start-up and planning alone: "
          f"{floor - 1:.1f}x)")
    print(f"ptybatch/xargs ratio: {ratio:.1f}x (target <= 3x) -> {'OK' if ratio <= 3 else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
