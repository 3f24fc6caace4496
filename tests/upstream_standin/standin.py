"""What the four stand-in tools share: reading upstream-format npz data, the bundle, Keras-style lines."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np


def require_file(path: str | None, what: str) -> Path:
    """Upstream's message for a missing input, then exit 1 (as its validate_paths caller does)."""
    if path is None or not Path(path).is_file():
        print(f"ERROR: {what} file not found: {path}")
        sys.exit(1)
    return Path(path)


def diffraction(path: Path) -> np.ndarray:
    with np.load(path) as data:
        return np.asarray(data["diffraction"], dtype=np.float64)


def patch_stats_line(phase: str, values: np.ndarray) -> str:
    mean, std = float(values.mean()), float(values.std())
    return f"Torch patch stats ({phase} batch 0): mean={mean:.6f} std={std:.6f} var_zero_mean={float((values ** 2).mean()):.6f}"


def check_accelerator(accelerator: str) -> None:
    """Lightning refuses a GPU accelerator where there is none; so does the stand-in."""
    if accelerator in ("gpu", "cuda") and not os.environ.get("CUDA_VISIBLE_DEVICES"):
        print("lightning.fabric.utilities.exceptions.MisconfigurationException: "
              "No supported gpu backend found!", flush=True)
        sys.exit(1)


def write_bundle(output_dir: Path, params: dict) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    bundle = output_dir / "wts.h5.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("diffraction_to_obj/params.dill", json.dumps(params))
    return bundle


def read_bundle(model_dir: str) -> dict:
    bundle = Path(model_dir) / "wts.h5.zip"
    if not bundle.is_file():
        raise RuntimeError(f"Failed to load model bundle from {model_dir}.\n"
                           f"Error: [Errno 2] No such file or directory: '{bundle}'\n"
                           "Ensure model_path contains wts.h5.zip archive (spec-compliant format).")
    with zipfile.ZipFile(bundle) as archive:
        return json.loads(archive.read("diffraction_to_obj/params.dill"))


def keras_epochs(nepochs: int, steps: int, start_loss: float) -> float:
    """Keras progress output as it lands in a file: ANSI bold and colour, `\\r` redraws, `\\b` erasures."""
    loss = start_loss
    for epoch in range(1, nepochs + 1):
        print(f"Epoch {epoch}/{nepochs}")
        for step in range(1, steps + 1):
            loss -= 0.1
            bar = "\x1b[32m" + "━" * (20 * step // steps) + "\x1b[0m\x1b[37m" + "━" * (20 - 20 * step // steps) + "\x1b[0m"
            tail = f"- loss: {loss:.4f}" if step < steps else f"- loss: {loss:.4f} - val_loss: {loss + 1:.4f}"
            print(f"\r\x1b[1m{step}/{steps}\x1b[0m {bar} \x1b[1m0s\x1b[0m 12ms/step {tail}\b\b\b\b    \b\b\b\b",
                  flush=True)
    return loss
