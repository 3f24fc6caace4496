"""Simulated ptychography data in the upstream npz format (numpy only, deterministic per seed).

`python -m ptycho_batch.workloads.sim --output_dir D --n_train K --n_test K --nphotons 1e5 --N 64 --seed S`
writes D/train.npz and D/test.npz. Each split has its own object (smooth blobs and lines in amplitude
and phase, so that a reconstruction has structure to get right), scanned at random integer positions
by a disk-aperture probe with a defocus phase; diffraction amplitudes are sqrt of Poisson counts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ptycho_batch.workloads.physics import diffraction_amplitude, intensity_scale, normalise_probe


def smooth_field(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """Random Gaussian blobs plus a few soft lines, scaled to [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    field = np.zeros((size, size))
    for _ in range(size * size // (n * n // 4)):
        cy, cx = rng.uniform(0, size, 2)
        sigma = rng.uniform(n / 12, n / 5)
        field += rng.uniform(-1, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    for _ in range(size // n * 3):
        angle, offset = rng.uniform(0, np.pi), rng.uniform(0, size)
        distance = np.abs(np.cos(angle) * xx + np.sin(angle) * yy - offset)
        field += rng.uniform(0.5, 1.0) * np.exp(-(distance**2) / (2 * 1.5**2))
    return (field - field.min()) / (field.max() - field.min())


def make_object(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    amplitude = 0.4 + 0.6 * smooth_field(rng, size, n)
    phase = np.pi / 2 * (smooth_field(rng, size, n) - 0.5)
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def make_probe(n: int) -> np.ndarray:
    """A soft-edged disk of radius N/4 with a quadratic (defocus) phase of 3 pi at its rim."""
    yy, xx = np.mgrid[0:n, 0:n] - (n - 1) / 2
    r2 = yy**2 + xx**2
    radius = n / 4
    aperture = 1 / (1 + np.exp((np.sqrt(r2) - radius) / 0.7))
    return normalise_probe(aperture * np.exp(1j * 3 * np.pi * r2 / radius**2))


def simulate_split(rng: np.random.Generator, count: int, n: int, nphotons: float, probe: np.ndarray,
                   split: str, seed: int) -> dict[str, np.ndarray]:
    size = 2 * n
    obj = make_object(rng, size, n)
    centres = rng.integers(n // 2, size - n // 2 + 1, size=(count, 2))
    patches = np.stack([obj[y - n // 2: y + n // 2, x - n // 2: x + n // 2] for y, x in centres])
    scale = intensity_scale(nphotons, n)
    counts = rng.poisson(diffraction_amplitude(probe, patches, scale) ** 2)
    amplitude = np.sqrt(counts).astype(np.float32)
    ycoords, xcoords = centres[:, 0].astype(np.float64), centres[:, 1].astype(np.float64)
    metadata = {"physics_parameters": {"nphotons": nphotons, "N": n, "object_size": size},
                "generator": "ptycho_batch.workloads.sim", "split": split, "seed": seed}
    return {
        "diff3d": amplitude, "diffraction": amplitude,
        "xcoords": xcoords, "ycoords": ycoords,
        "xcoords_start": xcoords.copy(), "ycoords_start": ycoords.copy(),
        "probeGuess": probe, "objectGuess": obj,
        "scan_index": np.arange(count, dtype=np.int64),
        "_metadata": np.array(json.dumps(metadata)),
    }


def simulate(output_dir: Path, n_train: int, n_test: int, nphotons: float, n: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    probe = make_probe(n)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for split, count in (("train", n_train), ("test", n_test)):
        path = output_dir / f"{split}.npz"
        np.savez(path, **simulate_split(rng, count, n, nphotons, probe, split, seed))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ptycho_batch.workloads.sim", description=__doc__.split("\n")[0])
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--n_train", type=int, default=512)
    parser.add_argument("--n_test", type=int, default=256)
    parser.add_argument("--nphotons", type=float, default=1e5)
    parser.add_argument("--N", type=int, default=64, dest="n")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.n % 4:
        parser.error("--N must be a multiple of 4")
    for path in simulate(args.output_dir, args.n_train, args.n_test, args.nphotons, args.n, args.seed):
        with np.load(path) as npz:
            m, n, _ = npz["diffraction"].shape
            print(f"Wrote {path}: {m} patterns of {n}x{n}, object {npz['objectGuess'].shape}, "
                  f"nphotons {args.nphotons:g}, seed {args.seed} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
