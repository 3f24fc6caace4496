"""`python -m ptycho_batch.workloads.torch {train,infer} ...`: the workload on PyTorch.

Safe as a module name: Python 3 imports are absolute, so `import torch` elsewhere finds PyTorch, and
this package's directory is never put on sys.path.
"""

from ptycho_batch.workloads.cli import main
from ptycho_batch.workloads.torch_pinn import FRAMEWORK

if __name__ == "__main__":
    raise SystemExit(main(FRAMEWORK))
