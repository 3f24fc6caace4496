"""Training throughput of the torch and TF workloads on the same data and sizes, side by side.

    .venv/bin/python bench/workloads.py [--gridsize 1 2] [--n_images 256] [--epochs 5] [--batch_size 16]

Builds (or reuses) both backend venvs, simulates one dataset, trains each backend on it with identical
flags and reports samples/s over the epochs after the first (the first holds tracing, XLA compilation and
allocator warm-up, shown apart), the whole process's wall time, and the torch/TF ratio.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ptycho_batch.runtimes.venv import ensure_venv

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = {"torch": [], "tf": ["--translate", "xla"]}
EPOCH = re.compile(r"^Epoch \d+/\d+ loss=\S+ time=(\S+)s$", re.M)


def python_of(backend: str) -> Path:
    return ensure_venv(ROOT / "containers" / backend / "requirements.txt", backend) / "bin" / "python"


def train(backend: str, data: Path, out: Path, gridsize: int, args: argparse.Namespace) -> dict[str, float]:
    argv = [str(python_of(backend)), "-m", f"ptycho_batch.workloads.{backend}", "train", "--train_data_file", str(data),
            "--output_dir", str(out), "--gridsize", str(gridsize), "--n_images", str(args.n_images),
            "--max_epochs", str(args.epochs), "--batch_size", str(args.batch_size), "--accelerator", args.accelerator,
            *BACKENDS[backend]]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT)
    wall = time.perf_counter() - start
    epochs = [float(t) for t in EPOCH.findall(done.stdout)]
    device = re.search(r"^Using device: (.*)$", done.stdout, re.M)
    return {"samples_per_s": args.n_images / statistics.median(epochs[1:]), "first_epoch_s": epochs[0],
            "steady_epoch_s": statistics.median(epochs[1:]), "process_s": wall, "device": device[1] if device else "?"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gridsize", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n_images", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--accelerator", default="auto")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is warm-up)")
    with tempfile.TemporaryDirectory(prefix="ptybatch-bench-") as scratch:
        work = Path(scratch)
        subprocess.run([str(python_of("torch")), "-m", "ptycho_batch.workloads.sim", "--output_dir", str(work / "data"),
                        "--n_train", str(args.n_images), "--n_test", "16", "--seed", "0"],
                       check=True, capture_output=True, cwd=ROOT)
        print(f"{args.n_images} images of 64x64, batch {args.batch_size}, {args.epochs} epochs "
              f"(steady state = median of epochs 2..{args.epochs})")
        print(f"{'gridsize':>8} {'backend':>7} {'samples/s':>10} {'epoch s':>8} {'1st epoch s':>11} "
              f"{'process s':>9}  device")
        for gridsize in args.gridsize:
            data = work / "data" / "train.npz"
            results = {b: train(b, data, work / f"{b}-{gridsize}", gridsize, args) for b in BACKENDS}
            for backend, r in results.items():
                print(f"{gridsize:>8} {backend:>7} {r['samples_per_s']:>10.1f} {r['steady_epoch_s']:>8.3f} "
                      f"{r['first_epoch_s']:>11.3f} {r['process_s']:>9.1f}  {r['device']}")
            ratio = results["torch"]["samples_per_s"] / results["tf"]["samples_per_s"]
            print(f"{gridsize:>8} {'ratio':>7} torch/tf throughput = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
