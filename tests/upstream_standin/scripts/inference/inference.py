"""Stand-in for upstream's `scripts/inference/inference.py` (flags as upstream's)."""

from __future__ import annotations

import argparse
from pathlib import Path

from standin import read_bundle, require_file


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Ptychography Inference Script")
    parser.add_argument("--model_path", type=str, required=True)
    parser.add_argument("--test_data", type=str, required=True)
    parser.add_argument("--config", type=str, required=False, default=None)
    parser.add_argument("--output_dir", type=str, default="inference_outputs")
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--comparison_plot", action="store_true")
    parser.add_argument("--n_images", type=int, default=None)
    parser.add_argument("--n_subsample", type=int, default=None)
    parser.add_argument("--subsample_seed", type=int, default=None)
    parser.add_argument("--phase_vmin", type=float, default=None)
    parser.add_argument("--phase_vmax", type=float, default=None)
    parser.add_argument("--debug_dump", nargs="?", const="__AUTO__", default=None)
    parser.add_argument("--backend", choices=["tensorflow", "pytorch"], default="tensorflow")
    parser.add_argument("--torch-accelerator", choices=["auto", "cpu", "cuda", "gpu", "mps", "tpu"], default="cuda")
    parser.add_argument("--torch-num-workers", type=int, default=0)
    parser.add_argument("--torch-inference-batch-size", type=int, default=None)
    return parser.parse_args()


def main() -> int:
    args = parse()
    require_file(args.test_data, "Test data")
    params = read_bundle(args.model_path)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "reconstructed_amplitude.png").write_bytes(b"\x89PNG stand-in")
    print(f"Inference finished (N={params['N']}); outputs in {output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
