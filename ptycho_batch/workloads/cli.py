"""The `train` and `infer` commands, written once for both frameworks.

`python -m ptycho_batch.workloads.torch ...` and `... .tf ...` call `main(framework)` with their
framework; the flags, outputs and log lines (the campaign files' `observe` patterns) are the same.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ptycho_batch.workloads import architecture, bundle, data
from ptycho_batch.workloads.figures import save_reconstruction
from ptycho_batch.workloads.metrics import align, bounding_box, psnr, ssim
from ptycho_batch.workloads.model_api import Framework, ModelConfig, PinnModel
from ptycho_batch.workloads.png import tile, write_png
from ptycho_batch.workloads.stats import patch_stats, stats_line
from ptycho_batch.workloads.stitch import stitch

PREDICT_BATCH = 64
GRID_PATCHES = 16


def batches(groups: data.Groups, size: int, order: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    order = np.arange(len(groups.members)) if order is None else order
    for start in range(0, len(order), size):
        index = order[start: start + size]
        yield groups.diffraction[index], groups.offsets[index]


def predict_all(model: PinnModel, groups: data.Groups) -> np.ndarray:
    """Object patches (K, C, N, N) of every group."""
    return np.concatenate([model.predict(d, o).patches for d, o in batches(groups, PREDICT_BATCH)])


def write_patch_report(patches: np.ndarray, directory: Path, stats_name: str, extra: dict) -> None:
    """Patch stats (printed, and written as JSON) and the patch grid PNG of the first patches."""
    amplitudes = np.abs(patches)
    stats = patch_stats(amplitudes)
    print(stats_line(stats), flush=True)
    (directory / stats_name).write_text(json.dumps({**stats, **extra}, indent=2) + "\n")
    write_png(directory / "patch_grid.png", tile(amplitudes.reshape(-1, *amplitudes.shape[-2:])[:GRID_PATCHES]))


def reconstruct(model: PinnModel, dataset: data.Dataset, groups: data.Groups, directory: Path, prefix: str,
                label: str) -> None:
    """Stitch, align to the ground truth (global phase and scale), write figures, npz and metrics.json."""
    patches = predict_all(model, groups)
    obj, covered = stitch(patches.reshape(-1, *patches.shape[-2:]), groups.coords.reshape(-1, 2), dataset.obj.shape)
    aligned = align(obj, dataset.obj, covered)
    rows, columns = bounding_box(covered)
    amplitude, truth = np.abs(aligned), np.abs(dataset.obj)
    metrics = {
        "amplitude_psnr": psnr(amplitude, truth, covered),
        "amplitude_ssim": ssim(amplitude[rows, columns], truth[rows, columns]),
        "phase_psnr": psnr(np.angle(aligned), np.angle(dataset.obj), covered),
        "phase_ssim": ssim(np.angle(aligned)[rows, columns], np.angle(dataset.obj)[rows, columns]),
        "covered_fraction": float(covered.mean()),
        "n_groups": int(len(groups.members)),
    }
    for quantity, score in (("amplitude", f"PSNR {metrics['amplitude_psnr']:.2f} dB, SSIM "
                                          f"{metrics['amplitude_ssim']:.3f}"),
                            ("phase", f"PSNR {metrics['phase_psnr']:.2f} dB")):
        save_reconstruction(directory / f"{prefix}_{quantity}.png", aligned, dataset.obj, covered, quantity=quantity,
                            title=f"{label}: {prefix} {quantity} ({score}, {metrics['n_groups']} groups)")
    np.savez(directory / f"{prefix}.npz", object=aligned, covered=covered)
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"Amplitude PSNR: {metrics['amplitude_psnr']:.3f} dB, SSIM: {metrics['amplitude_ssim']:.4f} "
          f"(phase PSNR {metrics['phase_psnr']:.3f} dB, SSIM {metrics['phase_ssim']:.4f}, "
          f"{metrics['n_groups']} groups)", flush=True)


def _device(framework: Framework, accelerator: str) -> str:
    device, description = framework.select_device(accelerator)
    print(f"Using device: {description} (--accelerator {accelerator}, {framework.name} {framework.version})",
          flush=True)
    return device


def train(framework: Framework, args: argparse.Namespace) -> int:
    dataset = data.load(args.train_data_file)
    groups = data.group(dataset, args.n_images, args.gridsize)
    scale = dataset.intensity_scale
    translate = getattr(args, "translate", "")
    config = ModelConfig(gridsize=args.gridsize, probe=dataset.probe, intensity_scale=scale,
                         device=_device(framework, args.accelerator), learning_rate=args.learning_rate,
                         translate=translate, jit=getattr(args, "jit", False))
    print(f"intensity_scale: {scale:.6f}; {len(groups.members)} groups of {args.gridsize ** 2}"
          + (f"; translate={translate}" if translate else "") + (" (jit)" if config.jit else ""), flush=True)
    model = framework.build(architecture.initial_weights(args.gridsize, args.seed), config)
    rng = np.random.default_rng(args.seed)
    history = []
    for epoch in range(1, args.max_epochs + 1):
        start, total, seen = time.perf_counter(), 0.0, 0
        for diffraction, offsets in batches(groups, args.batch_size, rng.permutation(len(groups.members))):
            total += model.train_step(diffraction, offsets) * len(diffraction)
            seen += len(diffraction)
        history.append(total / seen)
        elapsed = time.perf_counter() - start
        print(f"Epoch {epoch}/{args.max_epochs} loss={history[-1]:.6f} time={elapsed:.3f}s", flush=True)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    first = next(batches(groups, args.batch_size))
    write_patch_report(model.predict(*first).patches, args.output_dir, "patch_stats.json",
                       {"batch": 0, "intensity_scale": scale})
    evaluation = dataset
    if args.test_data_file:
        evaluation = data.load(args.test_data_file)
        test_groups = data.group(evaluation, args.n_images, args.gridsize)
        losses = [model.loss(d, o) * len(d) for d, o in batches(test_groups, PREDICT_BATCH)]
        print(f"Test loss={sum(losses) / len(test_groups.members):.6f}", flush=True)
    if args.do_stitching:
        groups = data.group(evaluation, args.n_images, args.gridsize)
        reconstruct(model, evaluation, groups, args.output_dir, "stitched", framework.name)
    params = {"intensity_scale": scale, "gridsize": args.gridsize, "N": dataset.n, "backend": framework.name,
              "framework_version": framework.version, "translate": translate, "n_images": len(groups.members),
              "max_epochs": args.max_epochs, "seed": args.seed, "loss_history": history,
              "layers": [vars(conv) for conv in architecture.layers(args.gridsize)]}
    path = args.output_dir / "wts.h5.zip"
    size = bundle.save(path, bundle.Bundle(weights=model.weights(), probe=dataset.probe, params=params))
    print(f"Bundle saved: {path.resolve()} ({size} bytes)", flush=True)
    return 0


def load_model(framework: Framework, path: Path, accelerator: str) -> tuple[PinnModel, dict]:
    """A model from a bundle written by either framework."""
    saved = bundle.load(path)
    config = ModelConfig(gridsize=saved.params["gridsize"], probe=saved.probe,
                         intensity_scale=saved.params["intensity_scale"], device=_device(framework, accelerator),
                         translate=framework.default_translation())
    return framework.build(saved.weights, config), saved.params


def infer(framework: Framework, args: argparse.Namespace) -> int:
    model, params = load_model(framework, args.model_path, args.accelerator)
    print(f"Loaded intensity_scale from bundle: {params['intensity_scale']:.6f}", flush=True)
    dataset = data.load(args.test_data)
    groups = data.group(dataset, args.n_images, params["gridsize"])
    args.output_dir.mkdir(parents=True, exist_ok=True)
    reconstruct(model, dataset, groups, args.output_dir, "reconstructed", framework.name)
    if args.debug_dump:
        args.debug_dump.mkdir(parents=True, exist_ok=True)
        first = next(batches(groups, PREDICT_BATCH))
        write_patch_report(model.predict(*first).patches, args.debug_dump, "stats.json",
                           {"intensity_scale": params["intensity_scale"], "bundle_backend": params["backend"]})
    return 0


def parser(framework: Framework) -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog=f"python -m ptycho_batch.workloads.{framework.name}",
                                   description=f"Reference PINN ptychography workload ({framework.name}).")
    commands = root.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("train", help="train a model and save its bundle")
    fit.add_argument("--train_data_file", type=Path, required=True)
    fit.add_argument("--test_data_file", type=Path)
    fit.add_argument("--output_dir", type=Path, required=True)
    fit.add_argument("--gridsize", type=int, default=1)
    fit.add_argument("--n_images", type=int, default=512, help="number of scan groups to train on")
    fit.add_argument("--max_epochs", type=int, default=10)
    fit.add_argument("--batch_size", type=int, default=16)
    fit.add_argument("--learning_rate", type=float, default=1e-3)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--do_stitching", action="store_true", help="stitch and score the test (else train) data")
    if len(framework.translations) > 1:
        fit.add_argument("--translate", choices=framework.translations, default=framework.default_translation(),
                         help="translation layer for gridsize > 1")
    if framework.supports_jit:
        fit.add_argument("--jit", action="store_true", help="XLA-compile the train and predict steps")
    run = commands.add_parser("infer", help="reconstruct a test set with a saved bundle")
    run.add_argument("--model_path", type=Path, required=True)
    run.add_argument("--test_data", type=Path, required=True)
    run.add_argument("--output_dir", type=Path, required=True)
    run.add_argument("--n_images", type=int, default=512)
    run.add_argument("--debug_dump", type=Path)
    for command in (fit, run):
        command.add_argument("--accelerator", choices=("auto", "cpu", "cuda"), default="auto")
    return root


def main(framework: Framework, argv: list[str] | None = None) -> int:
    args = parser(framework).parse_args(argv)
    return train(framework, args) if args.command == "train" else infer(framework, args)
