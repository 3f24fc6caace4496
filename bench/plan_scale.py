"""Planning at scale: peak memory a job and CPU time of `ptybatch validate` and `plan --json` on a big matrix.

Writes a campaign with one matrix job of `--side`^4 cells (4 params; default 16^4 = 65,536), then runs, each
in a fresh process, `ptybatch validate` and `ptybatch plan --json` (output to /dev/null), and as the baseline
a bare interpreter that imports what `validate` imports and plans nothing; with `--before DIR` the same
commands by an older package (`git archive main ptycho_batch | tar -x -C DIR`). Prints CPU seconds and peak
RSS of each (best of `--repeat`, as bench/status_scale.py measures them), and the RSS a job above the
baseline. Target: at most 1 KB a job for `validate`.

    python bench/plan_scale.py [--side 16] [--repeat 2] [--before DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml
from status_scale import Sample, best

BASELINE = ["-c", "import ptycho_batch.cli.main, ptycho_batch.engine.session"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=16, help="values per param (4 params: side^4 jobs)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--before", type=Path, help="a folder holding an older ptycho_batch package: measured too")
    args = parser.parse_args()
    count = args.side ** 4
    values = list(range(args.side))
    campaign = {"campaign": "scale", "backends": {"host": {"runtime": "host"}},
                "jobs": {"cell": {"backend": "host", "matrix": {p: values for p in "abcd"},
                                  "command": ["echo", "{a}", "{b}", "{c}", "{d}"]}}}
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "scale.yaml"
        spec.write_text(yaml.safe_dump(campaign))
        runs = {"validate": ["-m", "ptycho_batch", "validate", str(spec)],
                "plan --json": ["-m", "ptycho_batch", "plan", str(spec), "--json"]}
        sources = {"": None, **({f" ({args.before})": args.before} if args.before else {})}
        samples: dict[str, Sample] = {}
        for label, source in sources.items():
            samples[f"baseline (imports only){label}"] = best(BASELINE, args.repeat, source)
            samples |= {f"{name}{label}": best(argv, args.repeat, source) for name, argv in runs.items()}
    print(f"{count} jobs, CPU seconds (user + system) and peak RSS, best of {args.repeat}:")
    for label in sources:
        base = samples[f"baseline (imports only){label}"]
        for name in ("baseline (imports only)", *runs):
            sample = samples[f"{name}{label}"]
            extra = "" if name.startswith("baseline") else \
                f"   {(sample.rss - base.rss) * 1024 * 1024 / count:7.0f} B/job above the baseline"
            print(f"  {name + label:40s} {sample.cpu:6.2f} s   peak RSS {sample.rss:6.0f} MB{extra}")
    per_job = (samples["validate"].rss - samples["baseline (imports only)"].rss) * 1024 / count
    print(f"validate: {per_job:.2f} KB/job (target <= 1 KB) -> {'OK' if per_job <= 1 else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
