"""Reference PINN ptychography workloads, the same model in PyTorch and TensorFlow.

Imported only inside the per-backend environments (numpy, h5py and one framework): nothing here may
import the runner's dependencies (pydantic, rich, yaml), and nothing outside this package imports it.
Framework-neutral pieces (physics constants, data format, bundle, images, metrics) are numpy-only
modules shared by both frameworks; `torch_pinn` and `tf_pinn` hold what differs.
"""
