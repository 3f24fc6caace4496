"""Stand-in for `python -m ptycho_torch.train` (upstream's new CLI interface; flags as upstream's)."""

from __future__ import annotations

import argparse
from pathlib import Path

from standin import check_accelerator, diffraction, patch_stats_line, require_file, write_bundle


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="PyTorch Lightning training for ptychographic reconstruction")
    parser.add_argument("--train_data_file", type=str)
    parser.add_argument("--test_data_file", type=str)
    parser.add_argument("--output_dir", type=str)
    parser.add_argument("--max_epochs", type=int, default=100)
    parser.add_argument("--n_images", type=int, default=512)
    parser.add_argument("--gridsize", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--log-patch-stats", action="store_true")
    parser.add_argument("--patch-stats-limit", type=int, default=None)
    parser.add_argument("--device", type=str, choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--disable_mlflow", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--torch-loss-mode", choices=["poisson", "mae"], default="poisson")
    parser.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu", "cuda", "tpu", "mps"])
    parser.add_argument("--deterministic", dest="deterministic", action="store_true", default=True)
    parser.add_argument("--no-deterministic", dest="deterministic", action="store_false")
    parser.add_argument("--num-workers", type=int, default=0, dest="num_workers")
    parser.add_argument("--learning-rate", type=float, default=1e-3, dest="learning_rate")
    parser.add_argument("--logger", default="csv", choices=["none", "csv", "tensorboard", "mlflow"],
                        dest="logger_backend")
    parser.add_argument("--ptycho_dir", type=str)
    parser.add_argument("--config", type=str)
    return parser.parse_args()


def main() -> int:
    args = parse()
    print("Using new CLI interface with factory-based config (ADR-003)")
    if not args.output_dir:
        print("ERROR: --output_dir required for new CLI interface")
        return 1
    train = require_file(args.train_data_file, "Training data")
    if args.test_data_file:
        require_file(args.test_data_file, "Test data")
    check_accelerator(args.accelerator)
    data = diffraction(train)
    if args.log_patch_stats:
        print(patch_stats_line("train", data[: args.batch_size] / data.max()))
    output_dir = Path(args.output_dir)
    write_bundle(output_dir, {"N": int(data.shape[-1]), "gridsize": args.gridsize, "intensity_scale": 9.882117,
                              "nepochs": args.max_epochs})
    (output_dir / "checkpoints").mkdir(exist_ok=True)
    (output_dir / "checkpoints" / "last.ckpt").write_bytes(b"stand-in checkpoint")
    print(f"✓ Model bundle saved to {output_dir}/wts.h5.zip")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
