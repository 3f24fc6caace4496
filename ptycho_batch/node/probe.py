"""`python -m ptycho_batch.node.probe`: print one JSON provenance record of the environment a job really gets.

Run inside each backend's image (or venv) so that a job's provenance says which framework, which
CUDA / cuDNN / XLA build and which devices it saw. It imports only the standard library and whichever
frameworks are installed (never the runner's own dependencies, which the images do not carry), and it
records the *names* of the environment variables present, never their values.
Exit status 1 when an installed framework fails to import: that environment is broken.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

FRAMEWORK_MODULES = ("torch", "tensorflow")
_CONTAINER_MARKERS = {"/run/.containerenv": "podman", "/.dockerenv": "docker"}


def torch_record() -> dict[str, Any]:
    import torch

    cuda_devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "name": "torch",
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "hip": getattr(torch.version, "hip", None),
        "devices": ["cpu", *(f"cuda:{i} {name}" for i, name in enumerate(cuda_devices))],
    }


def tensorflow_record() -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter out of job logs
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    return {
        "name": "tensorflow",
        "version": tf.__version__,
        "cuda": build.get("cuda_version"),
        "cudnn": build.get("cudnn_version"),
        "cuda_build": bool(build.get("is_cuda_build")),
        "xla": {"built_with_xla": tf.test.is_built_with_xla(), "jit": tf.config.optimizer.get_jit() or None},
        "devices": [f"{d.device_type}:{d.name}" for d in tf.config.list_physical_devices()],
    }


_RECORDERS = {"torch": torch_record, "tensorflow": tensorflow_record}


def framework_records() -> list[dict[str, Any]]:
    """One record per installed framework (an image should hold exactly one)."""
    records = []
    for module in FRAMEWORK_MODULES:
        if importlib.util.find_spec(module) is None:
            continue
        try:
            records.append(_RECORDERS[module]())
        except Exception as error:  # a broken install is a finding, not a crash of the probe
            records.append({"name": module, "error": f"{type(error).__name__}: {error}"})
    return records


def container_kind(env_names: set[str]) -> str | None:
    for marker, kind in _CONTAINER_MARKERS.items():
        if Path(marker).exists():
            return kind
    if "CH_RUNNING" in env_names:
        return "charliecloud"
    if "APPTAINER_CONTAINER" in env_names or "SINGULARITY_CONTAINER" in env_names:
        return "apptainer"
    return None


def probe() -> dict[str, Any]:
    env_names = sorted(os.environ)  # taken first: importing a framework may add variables
    return {
        "probe_version": 1,
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "prefix": sys.prefix,
        },
        "platform": {"system": platform.system(), "machine": platform.machine(), "release": platform.release(),
                     "libc": "-".join(platform.libc_ver()) or None},
        "container": container_kind(set(env_names)),
        "frameworks": framework_records(),
        "env_names": env_names,
    }


def main() -> int:
    record = probe()
    print(json.dumps(record, indent=2, sort_keys=True))
    return 1 if any("error" in framework for framework in record["frameworks"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
