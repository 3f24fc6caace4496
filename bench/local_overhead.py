"""Per-job overhead of the local executor: 200 no-op jobs through `ptybatch submit` vs `xargs -P <cores>`.

Both are measured in the same run on the same machine; the figure is the ratio of wall times. When
snakemake is installed, the same 200 jobs as a Snakefile run with `snakemake -c <cores>` too.
Usage: python bench/local_overhead.py [--jobs 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def timed(argv: list[str], cwd: Path, stdin: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def ptybatch_run(folder: Path, count: int, cores: int) -> float:
    campaign = {"campaign": "bench", "backends": {"host": {"runtime": "host"}},
                "jobs": {"noop": {"backend": "host", "matrix": {"i": list(range(count))}, "command": ["true"]}}}
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(campaign))
    shutil.rmtree(folder / "reports", ignore_errors=True)
    return timed([sys.executable, "-m", "ptycho_batch", "submit", str(path), "--jobs", str(cores)], folder)


def xargs_run(folder: Path, count: int, cores: int) -> float:
    return timed(["xargs", "-P", str(cores), "-n", "1", "true"], folder, "\n".join(map(str, range(count))) + "\n")


def snakemake_run(folder: Path, count: int, cores: int) -> float:
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
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    runners = {"xargs": xargs_run, "ptybatch": ptybatch_run}
    if shutil.which("snakemake"):
        runners["snakemake"] = snakemake_run
    with tempfile.TemporaryDirectory() as tmp:
        best = {name: min(run(Path(tmp), args.jobs, cores) for _ in range(args.repeat))
                for name, run in runners.items()}
    print(f"{args.jobs} no-op jobs, {cores} cores, best of {args.repeat}:")
    for name, seconds in best.items():
        print(f"  {name:10s} {seconds:7.3f} s   {seconds / best['xargs']:6.1f}x xargs   "
              f"{1000 * seconds / args.jobs:6.2f} ms/job")
    ratio = best["ptybatch"] / best["xargs"]
    print(f"ptybatch/xargs ratio: {ratio:.1f}x (target <= 3x) -> {'OK' if ratio <= 3 else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
