"""Forward parity of the torch and TF models on the same weights.

`python -m ptycho_batch.workloads.parity --torch_bundle A --tf_bundle B --data F --output_dir D`
loads the given bundles (framework-neutral HDF5; either may be left out) into the forward model of
this environment's framework and writes the predicted diffraction of each on the same batch to
`D/forward_<framework>.npz`. Run it once per environment; the second run gets `--reference` (the first
run's npz) and compares the bundles both runs saw: max absolute and relative difference
(max|a-b| / max|b|), written to `D/parity.json`; exit status 1 when one exceeds `--tolerance`.
A campaign can thus check the required backend's bundle in both frameworks without waiting for the
optional backend's training.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
from pathlib import Path

import numpy as np

from ptycho_batch.workloads import data
from ptycho_batch.workloads.cli import load_model
from ptycho_batch.workloads.model_api import Framework

# framework -> (the package it needs, the module with its FRAMEWORK)
MODULES = {"torch": ("torch", "ptycho_batch.workloads.torch_pinn"),
           "tf": ("tensorflow", "ptycho_batch.workloads.tf_pinn")}


def framework_named(name: str) -> Framework:
    """The framework `name`, or with "auto" the one installed in this environment."""
    if name == "auto":
        installed = [n for n, (package, _) in MODULES.items() if importlib.util.find_spec(package)]
        if not installed:
            raise SystemExit("parity: neither torch nor tensorflow is installed in this environment")
        name = installed[0]
    return importlib.import_module(MODULES[name][1]).FRAMEWORK


def forward(framework: Framework, bundle: Path, dataset: data.Dataset, n_images: int, accelerator: str) -> np.ndarray:
    model, params = load_model(framework, bundle, accelerator)
    groups = data.group(dataset, n_images, params["gridsize"])
    return model.predict(groups.diffraction, groups.offsets).amplitude


def compare(ours: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    result = {}
    for key in sorted(set(ours) & set(reference)):
        value = ours[key]
        difference = np.abs(value.astype(np.float64) - reference[key])
        result[key] = {"max_abs": float(difference.max()),
                       "max_rel": float(difference.max() / max(float(np.abs(reference[key]).max()), 1e-30))}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ptycho_batch.workloads.parity", description=__doc__.split("\n")[0])
    parser.add_argument("--torch_bundle", type=Path)
    parser.add_argument("--tf_bundle", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--output_dir", type=Path, default=Path("."))
    parser.add_argument("--n_images", type=int, default=16)
    parser.add_argument("--framework", choices=("auto", *MODULES), default="auto")
    parser.add_argument("--reference", type=Path, help="forward_<framework>.npz of the other framework's run")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--accelerator", choices=("auto", "cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    if not (args.torch_bundle or args.tf_bundle):
        parser.error("give --torch_bundle, --tf_bundle or both")
    framework = framework_named(args.framework)
    dataset = data.load(args.data)
    outputs = {f"{name}_bundle": forward(framework, path, dataset, args.n_images, args.accelerator)
               for name, path in (("torch", args.torch_bundle), ("tf", args.tf_bundle)) if path}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    written = args.output_dir / f"forward_{framework.name}.npz"
    np.savez(written, **outputs)
    print(f"Forward pass of {', '.join(outputs)} on {framework.name} {framework.version}: {written}", flush=True)
    if not args.reference:
        return 0
    with np.load(args.reference) as npz:
        reference = {key: npz[key] for key in npz.files}
    report = compare(outputs, reference)
    if not report:
        raise SystemExit(f"parity: {args.reference} holds none of {sorted(outputs)}")
    for key, numbers in report.items():
        print(f"Parity {key}: max_abs={numbers['max_abs']:.3e} max_rel={numbers['max_rel']:.3e} "
              f"({framework.name} vs {args.reference.name}, tolerance {args.tolerance:g})", flush=True)
    worst = max(numbers["max_rel"] for numbers in report.values())
    (args.output_dir / "parity.json").write_text(json.dumps(
        {"framework": framework.name, "reference": str(args.reference), "tolerance": args.tolerance,
         "bundles": report, "max_rel": worst, "passed": worst <= args.tolerance}, indent=2) + "\n")
    print(f"Parity {'PASSED' if worst <= args.tolerance else 'FAILED'}: max_rel={worst:.3e}", flush=True)
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    raise SystemExit(main())
