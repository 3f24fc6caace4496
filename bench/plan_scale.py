"""Planning at scale: peak memory a job and time of `ptybatch validate` and `plan --json` on a big matrix.

Writes a campaign with one matrix job of `--jobs` cells (4 params; default 16^4 = 65,536), then runs, each
in a fresh process, `ptybatch validate` and `ptybatch plan --json` (output to /dev/null), and as the baseline
a bare interpreter that imports what `validate` imports and plans nothing. Prints seconds and peak RSS of
each, and the RSS a job above the baseline. Target: at most 1 KB a job.

    python bench/plan_scale.py [--side 16] [--repeat 2]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

BASELINE = "import ptycho_batch.cli.main, ptycho_batch.engine.session"


def measure(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process (RUSAGE_CHILDREN after it, one at a time)."""
    script = ("import resource, subprocess, sys, time; start = time.perf_counter(); "
              "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
              "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", script, *argv], cwd=cwd, capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), float(out[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=16, help="values per param (4 params: side^4 jobs)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    count = args.side ** 4
    values = list(range(args.side))
    campaign = {"campaign": "scale", "backends": {"host": {"runtime": "host"}},
                "jobs": {"cell": {"backend": "host", "matrix": {p: values for p in "abcd"},
                                  "command": ["echo", "{a}", "{b}", "{c}", "{d}"]}}}
    runs = {"baseline (imports only)": [sys.executable, "-c", BASELINE],
            "validate": [sys.executable, "-m", "ptycho_batch", "validate", "scale.yaml"],
            "plan --json": [sys.executable, "-m", "ptycho_batch", "plan", "scale.yaml", "--json"]}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "scale.yaml").write_text(yaml.safe_dump(campaign))
        samples = {name: [measure(argv, Path(folder)) for _ in range(args.repeat)] for name, argv in runs.items()}
    best = {name: (min(s for s, _ in runs_), min(r for _, r in runs_)) for name, runs_ in samples.items()}
    print(f"{count} jobs, best time and lowest peak of {args.repeat} (this bench process: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB):")
    base_rss = best["baseline (imports only)"][1]
    for name, (seconds, rss) in best.items():
        extra = "" if name.startswith("baseline") else \
            f"   {(rss - base_rss) * 1024 * 1024 / count:7.0f} B/job above the baseline"
        print(f"  {name:24s} {seconds:6.2f} s   peak RSS {rss:6.0f} MB{extra}")
    per_job = (best["validate"][1] - base_rss) * 1024 / count
    print(f"validate: {per_job:.2f} KB/job (target <= 1 KB) -> {'OK' if per_job <= 1 else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
