"""Per-job start overhead of the container runtimes versus the host, for a no-op job (`true`).

Each runtime launches the same job through its runtime class, exactly as jobrun would (its argv, its
env, a scratch workdir bound in), `--runs` times after one warm-up; the table gives the median and
mean wall time per job, the overhead over the host in ms and the ratio to the host.

    python bench/container_overhead.py [--runs 20] [--image localhost/ptybatch-base:bookworm] [--json]

Needs rootful podman (containers/setup-podman.sh); charliecloud is measured when ch-run is installed,
on a directory converted once from the same image (kept in the ptybatch image cache).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ptycho_batch.runtimes import images as containers
from ptycho_batch.runtimes.base import Launch, Runtime
from ptycho_batch.runtimes.charliecloud import SOURCE_ID_FILE, CharliecloudRuntime
from ptycho_batch.runtimes.host import HostRuntime
from ptycho_batch.runtimes.podman import PodmanRuntime


def time_runs(runtime: Runtime, launch: Launch, runs: int) -> list[float]:
    """Wall seconds of each of `runs` launches, after one untimed warm-up."""
    argv, env = runtime.argv(launch), runtime.env(launch)
    seconds = []
    for index in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        if index:
            seconds.append(time.perf_counter() - start)
    return seconds


def charliecloud_image(image: str) -> Path:
    directory = containers.charliecloud_dir(image)
    if not (directory / SOURCE_ID_FILE).is_file():
        containers.charliecloud(image, destination=directory)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--image", default="localhost/ptybatch-base:bookworm")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    runtimes: dict[str, Runtime] = {"host": HostRuntime(), "podman": PodmanRuntime(args.image)}
    if shutil.which("ch-run"):
        runtimes["charliecloud"] = CharliecloudRuntime(charliecloud_image(args.image))
    with tempfile.TemporaryDirectory(prefix="ptybatch-bench-") as workdir:
        launch = Launch(argv=["true"], env={"PATH": os.environ["PATH"], "PTYBATCH_JOB": "noop"},
                        workdir=Path(workdir))
        samples = {name: time_runs(runtime, launch, args.runs) for name, runtime in runtimes.items()}

    host_ms = statistics.median(samples["host"]) * 1000
    figures = {}
    for name, seconds in samples.items():
        median_ms = statistics.median(seconds) * 1000
        figures[name] = {"median_ms": round(median_ms, 2), "mean_ms": round(statistics.mean(seconds) * 1000, 2),
                         "overhead_ms": round(median_ms - host_ms, 2), "ratio": round(median_ms / host_ms, 1)}
    if args.json:
        print(json.dumps({"runs": args.runs, "image": args.image, "runtimes": figures}, indent=2))
        return
    print(f"no-op job (`true`), {args.runs} runs each, image {args.image}")
    print(f"{'runtime':<14}{'median ms':>11}{'mean ms':>10}{'overhead ms':>13}{'x host':>9}")
    for name, figure in figures.items():
        print(f"{name:<14}{figure['median_ms']:>11.2f}{figure['mean_ms']:>10.2f}"
              f"{figure['overhead_ms']:>13.2f}{figure['ratio']:>9.1f}")


if __name__ == "__main__":
    main()
