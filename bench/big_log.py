"""Classifying a failed job with a huge log: peak memory and time of the job runner's one streaming pass.

Writes a log of `--mb` megabytes (Keras-style progress bars with carriage returns and ANSI colours, a loss
line per epoch, a traceback at the end), then, each in a fresh process, the runner's way (`scan_log` and
`classify`: a chunked pass) and the baseline (the whole log read, cleaned and split into lines, as before)
classify it. Prints seconds and peak RSS of each and the ratios. Targets: under 100 MB and 2 s at 200 MB.

    python bench/big_log.py [--mb 200] [--no-baseline]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEASURE = r"""
import json, re, resource, sys, time
from pathlib import Path
from ptycho_batch.node.triage import KEYWORDS, LINE_PATTERNS, TAIL_LINES, classify
observe = {"loss": r"loss: ([0-9.]+)$"}
start = time.perf_counter()
if sys.argv[2] == "stream":
    from ptycho_batch.node.logscan import scan_log
    scan = scan_log(Path(sys.argv[1]), observe, LINE_PATTERNS, TAIL_LINES, KEYWORDS)
    lines, metrics = scan.lines, scan.metrics
else:
    from ptycho_batch.node.observe import clean_text, extract_metrics
    lines = clean_text(Path(sys.argv[1]).read_text(errors="replace")).splitlines()
    metrics = extract_metrics("\n".join(lines), observe)[0]
verdict = classify(lines, exit_code=1, signal=None, timed_out=False, cancelled=False, unmet=[], missing=[])
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "verdict": [verdict.failure_class, verdict.line] if verdict else None, "loss": metrics.get("loss")}))
"""


def write_log(path: Path, megabytes: int) -> None:
    bar = "".join(f"\r\x1b[32m{step}/1000\x1b[0m [{'=' * (step // 40):<25}] - ETA: 1s - loss: 0.{step:04d}"
                  for step in range(0, 1000, 10))
    epoch = 0
    with open(path, "w") as log:
        while log.tell() < megabytes * 1024 * 1024:
            epoch += 1
            log.write(f"Epoch {epoch}/100000\n{bar}\nloss: 0.{epoch % 10000:04d}\n")
        log.write("Traceback (most recent call last):\n  File \"train.py\", line 9, in <module>\n"
                  "tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor\n")


def measure(path: Path, mode: str) -> dict:
    result = subprocess.run([sys.executable, "-c", MEASURE, str(path), mode], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "train.log"
        write_log(log, args.mb)
        size = log.stat().st_size / 1024 / 1024
        idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stream = measure(log, "stream")
        print(f"log {size:.0f} MB; streaming pass: {stream['seconds']:.2f} s, peak RSS {stream['rss_mb']:.0f} MB "
              f"(this bench process, idle: {idle:.0f} MB); verdict {stream['verdict']}, last loss {stream['loss']}")
        if not args.no_baseline:
            start = time.perf_counter()
            whole = measure(log, "whole")
            print(f"baseline (whole log read): {whole['seconds']:.2f} s, peak RSS {whole['rss_mb']:.0f} MB "
                  f"(wall {time.perf_counter() - start:.1f} s); verdict {whole['verdict']}")
            print(f"ratios: time {whole['seconds'] / stream['seconds']:.1f}x less, "
                  f"memory {whole['rss_mb'] / stream['rss_mb']:.1f}x less; same verdict: "
                  f"{whole['verdict'] == stream['verdict'] and whole['loss'] == stream['loss']}")


if __name__ == "__main__":
    main()
