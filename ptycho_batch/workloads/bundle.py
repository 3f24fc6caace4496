"""The model bundle `wts.h5.zip`: weights and probe in HDF5 (h5py, the shared layout) plus `params.json`.

Framework-neutral, so a bundle trained with one framework loads into the other. Written to a temporary
name and renamed, so a bundle path that exists is complete; zip entries carry a fixed timestamp and the
HDF5 objects no times, so the same weights give the same bytes (stable digests).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

WEIGHTS_ENTRY = "wts.h5"
PARAMS_ENTRY = "params.json"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Bundle:
    weights: dict[str, np.ndarray]  # `<layer>/kernel` (3, 3, in, out) and `<layer>/bias`
    probe: np.ndarray  # (N, N) complex64, the physics layer's probe
    params: dict  # intensity_scale, gridsize, N, backend, framework_version, training record


def _untimed(kind: int):
    plist = h5py.h5p.create(kind)
    plist.set_obj_track_times(False)
    return plist


def _hdf5_bytes(bundle: Bundle) -> bytes:
    """HDF5 without object timestamps (root, groups and datasets), so equal weights give equal bytes."""
    buffer = io.BytesIO()
    access = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    access.set_fileobj_driver(h5py.h5fd.fileobj_driver, buffer)
    access.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    groups = _untimed(h5py.h5p.GROUP_CREATE)
    file_id = h5py.h5f.create(b"wts.h5", h5py.h5f.ACC_TRUNC, fapl=access, fcpl=_untimed(h5py.h5p.FILE_CREATE))
    with h5py.File(file_id) as h5:
        h5py.h5g.create(h5.id, b"weights", gcpl=groups)
        for layer in sorted({name.split("/")[0] for name in bundle.weights}):
            h5py.h5g.create(h5.id, f"weights/{layer}".encode(), gcpl=groups)
        for name in sorted(bundle.weights):
            h5.create_dataset(f"weights/{name}", data=bundle.weights[name], track_times=False)
        h5.create_dataset("probe", data=bundle.probe, track_times=False)
    return buffer.getvalue()


def save(path: Path, bundle: Bundle) -> int:
    """Write the bundle atomically and return its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, payload in ((WEIGHTS_ENTRY, _hdf5_bytes(bundle)),
                               (PARAMS_ENTRY, json.dumps(bundle.params, indent=2, sort_keys=True).encode())):
            info = zipfile.ZipInfo(entry, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, payload)
    with open(partial, "rb") as written:
        os.fsync(written.fileno())
    os.replace(partial, path)
    return path.stat().st_size


def load(path: Path) -> Bundle:
    with zipfile.ZipFile(path) as archive:
        params = json.loads(archive.read(PARAMS_ENTRY))
        with h5py.File(io.BytesIO(archive.read(WEIGHTS_ENTRY)), "r") as h5:
            weights: dict[str, np.ndarray] = {}
            h5["weights"].visititems(lambda name, item: weights.__setitem__(name, item[()])
                                     if isinstance(item, h5py.Dataset) else None)
            probe = h5["probe"][()]
    return Bundle(weights=weights, probe=probe, params=params)
