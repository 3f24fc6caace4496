"""Stand-in for `python -m ptycho_torch.inference` (flags as upstream's; --model_path is the training output dir)."""

from __future__ import annotations

import argparse
from pathlib import Path

from standin import check_accelerator, diffraction, patch_stats_line, read_bundle, require_file


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="PyTorch Lightning checkpoint inference for ptychography")
    parser.add_argument("--model_path", type=str, required=True)
    parser.add_argument("--test_data", type=str, required=True)
    parser.add_argument("--output_dir", type=str, required=True)
    parser.add_argument("--n_images", type=int, default=None)
    parser.add_argument("--patch-weighting", choices=["uniform", "probe"], default="uniform", dest="patch_weighting")
    parser.add_argument("--varpro-scaling", action="store_true", dest="varpro_scaling")
    parser.add_argument("--device", type=str, choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--log-patch-stats", action="store_true")
    parser.add_argument("--patch-stats-limit", type=int, default=None)
    parser.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu", "cuda", "tpu", "mps"])
    parser.add_argument("--num-workers", type=int, default=0, dest="num_workers")
    parser.add_argument("--inference-batch-size", type=int, default=None, dest="inference_batch_size")
    return parser.parse_args()


def main() -> int:
    args = parse()
    test = require_file(args.test_data, "Test data")
    check_accelerator(args.accelerator)
    params = read_bundle(args.model_path)
    print(f"Loaded model bundle from: {Path(args.model_path) / 'wts.h5.zip'}")
    print(f"Restored params.cfg from bundle (N={params['N']}, gridsize={params['gridsize']})")
    data = diffraction(test)[: args.n_images]
    if args.log_patch_stats:
        print(patch_stats_line("inference", data / data.max()))
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name in ("reconstructed_amplitude.png", "reconstructed_phase.png"):
        (output_dir / name).write_bytes(b"\x89PNG stand-in")
    print(f"Inference complete; outputs in {output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
