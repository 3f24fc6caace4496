"""Stand-in for upstream's `scripts/training/train.py` (flags from its TrainingConfig/ModelConfig fields)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from standin import diffraction, keras_epochs, require_file, write_bundle


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Non-grid CDI Example Script")
    parser.add_argument("--config", type=str)
    parser.add_argument("--do_stitching", action="store_true", default=False)
    parser.add_argument("--N", type=int, default=64)
    parser.add_argument("--gridsize", type=int, default=1)
    parser.add_argument("--model_type", choices=["pinn", "supervised"], default="pinn")
    parser.add_argument("--train_data_file", type=str, default=None)
    parser.add_argument("--test_data_file", type=str, default=None)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--nepochs", type=int, default=50)
    parser.add_argument("--nphotons", type=float, default=1e9)
    parser.add_argument("--n_groups", type=int, default=None)
    parser.add_argument("--n_images", type=int, default=None)
    parser.add_argument("--n_subsample", type=int, default=None)
    parser.add_argument("--subsample_seed", type=int, default=None)
    parser.add_argument("--neighbor_count", type=int, default=4)
    parser.add_argument("--output_dir", type=str, default="training_outputs")
    parser.add_argument("--backend", choices=["tensorflow", "pytorch"], default="tensorflow")
    parser.add_argument("--torch-accelerator", type=str, default="auto")
    return parser.parse_args()


def main() -> int:
    args = parse()
    logging.basicConfig(filename="train_debug.log", level=logging.DEBUG)  # upstream: in the working directory
    logging.info("stand-in training started")
    train = require_file(args.train_data_file, "Training data")
    test = require_file(args.test_data_file, "Test data") if args.test_data_file else None
    groups = args.n_groups or 512
    if args.gridsize > 1 and test is not None and groups > len(diffraction(test)):
        raise ValueError(f"Cannot generate {groups} groups from {len(diffraction(test))} test points")
    data = diffraction(train)
    steps = max(1, min(groups, len(data)) // args.batch_size)
    print(f"intensity_scale: {float(args.nphotons) ** 0.5 / float(data.mean() * data.shape[-1]):.14g}")
    final = keras_epochs(args.nepochs, steps, start_loss=-150.0)
    write_bundle(Path(args.output_dir), {"N": args.N, "gridsize": args.gridsize, "loss": final})
    if args.do_stitching:
        print("Object stitching complete")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
