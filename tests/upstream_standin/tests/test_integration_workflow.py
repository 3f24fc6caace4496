"""Stand-in for upstream's tests/test_integration_workflow.py: it reads a dataset the repository lacks."""

from pathlib import Path


def test_train_save_load_infer_cycle() -> None:
    data_file = Path(__file__).resolve().parents[1] / "ptycho" / "datasets" / "Run1084_recon3_postPC_shrunk_3.npz"
    with open(data_file, "rb"):
        pass
