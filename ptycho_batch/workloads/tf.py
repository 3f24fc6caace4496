"""`python -m ptycho_batch.workloads.tf {train,infer} ...`: the workload on TensorFlow (also --translate, --jit)."""

from ptycho_batch.workloads.cli import main
from ptycho_batch.workloads.tf_pinn import FRAMEWORK

if __name__ == "__main__":
    raise SystemExit(main(FRAMEWORK))
