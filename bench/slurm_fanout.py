"""SLURM fan-out on the dev cluster: a 1,000-task matrix campaign submitted with `ptybatch submit --detach`.

Measured in the same run: the wall time of that submit versus a bare `sbatch --array=0-999 --wrap true`
(as a ratio), the number of `sbatch` calls it made, and the number of `sacct`/`squeue` calls one poll
makes while the 1,000 tasks are queued (counted by shims placed first on PATH; the target is 1).
Both submissions are cancelled afterwards. Needs SLURM_CONF (source <dev cluster>/env.sh).
Usage: python bench/slurm_fanout.py [--tasks 1000]
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

COUNTED = ("sbatch", "sacct", "squeue")


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


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log = folder / "calls.log"
        env = make_shims(folder / "shims", log)
        campaign = {"campaign": "fanout", "backends": {"host": {"runtime": "host"}},
                    "jobs": {"noop": {"backend": "host", "matrix": {"i": list(range(args.tasks))},
                                      "command": ["true"], "array_parallelism": 8}}}
        path = folder / "fanout.yaml"
        path.write_text(yaml.safe_dump(campaign))
        bare_s, bare_id = timed(["sbatch", "--parsable", "--hold", f"--array=0-{args.tasks - 1}", "--wrap", "true",
                                 f"--output={folder}/bare-%a.out"], folder, os.environ.copy())
        ours_s, _ = timed([sys.executable, "-m", "ptycho_batch", "submit", str(path), "--executor", "slurm",
                           "--detach"], folder, env)
        submitted = calls(log)
        time.sleep(2.1)  # past the poller's minimum interval, so the next viewer really polls
        log.unlink()
        timed([sys.executable, "-m", "ptycho_batch", "status", str(path), "--json"], folder, env)
        per_poll = calls(log)
        subprocess.run([sys.executable, "-m", "ptycho_batch", "cancel", str(path)], cwd=folder, check=True,
                       capture_output=True)
        subprocess.run(["scancel", bare_id.strip()], check=True)
    print(f"{args.tasks}-task matrix campaign on the dev cluster:")
    print(f"  bare sbatch --array      {bare_s * 1000:8.1f} ms")
    print(f"  ptybatch submit --detach {ours_s * 1000:8.1f} ms   ratio {ours_s / bare_s:6.1f}x "
          "(includes Python start-up, planning, pickling and 1,000 journal records)")
    print(f"  sbatch calls by ptybatch: {submitted['sbatch']}")
    print(f"  scheduler calls in one poll with {args.tasks} tasks queued: sacct {per_poll['sacct']}, "
          f"squeue {per_poll['squeue']} (target: 1 in total)")


if __name__ == "__main__":
    main()
