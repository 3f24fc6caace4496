"""The upstream `.npz` dataset format, and grouping scans into gridsize x gridsize neighbourhoods."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptycho_batch.workloads.physics import intensity_scale

# key -> (dtype, rank); M scans of N x N patterns. `scan_index` and `_metadata` are checked apart.
ARRAY_KEYS: dict[str, tuple[type, int]] = {
    "diff3d": (np.float32, 3),
    "diffraction": (np.float32, 3),
    "xcoords": (np.float64, 1),
    "ycoords": (np.float64, 1),
    "xcoords_start": (np.float64, 1),
    "ycoords_start": (np.float64, 1),
    "probeGuess": (np.complex64, 2),
    "objectGuess": (np.complex64, 2),
    "scan_index": (np.int64, 1),
}


@dataclass(frozen=True)
class Dataset:
    """One split as the models use it."""

    diffraction: np.ndarray  # (M, N, N) float32 amplitude, sqrt(counts)
    coords: np.ndarray  # (M, 2) float64 (y, x) scan centres in object pixels
    probe: np.ndarray  # (N, N) complex64
    obj: np.ndarray  # (H, W) complex64 ground truth
    metadata: dict

    @property
    def n(self) -> int:
        return int(self.probe.shape[0])

    @property
    def intensity_scale(self) -> float:
        """From the metadata when it says so, else the nphotons formula."""
        physics = self.metadata.get("physics_parameters", {})
        if "intensity_scale" in physics:
            return float(physics["intensity_scale"])
        return intensity_scale(float(physics["nphotons"]), self.n)


def format_errors(arrays: dict[str, np.ndarray]) -> list[str]:
    """What is wrong with a loaded npz against the upstream format (empty when it conforms)."""
    errors = [f"missing key {k}" for k in [*ARRAY_KEYS, "_metadata"] if k not in arrays]
    for key, (dtype, rank) in ARRAY_KEYS.items():
        if key in arrays and (arrays[key].dtype != dtype or arrays[key].ndim != rank):
            errors.append(f"{key}: expected {np.dtype(dtype)} rank {rank}, found "
                          f"{arrays[key].dtype} rank {arrays[key].ndim}")
    if not errors:
        m, n = arrays["diff3d"].shape[0], arrays["probeGuess"].shape[0]
        if arrays["diff3d"].shape != (m, n, n) or arrays["diffraction"].shape != (m, n, n):
            errors.append(f"diffraction shape {arrays['diff3d'].shape} is not (M, {n}, {n})")
        errors += [f"{k} has {arrays[k].shape[0]} entries, not {m}" for k in
                   ("xcoords", "ycoords", "xcoords_start", "ycoords_start", "scan_index")
                   if arrays[k].shape[0] != m]
        if "nphotons" not in json.loads(str(arrays["_metadata"])).get("physics_parameters", {}):
            errors.append("_metadata lacks physics_parameters.nphotons")
    return errors


def load(path: Path) -> Dataset:
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    errors = format_errors(arrays)
    if errors:
        raise ValueError(f"{path}: not in the upstream npz format: " + "; ".join(errors))
    return Dataset(
        diffraction=arrays["diffraction"],
        coords=np.stack([arrays["ycoords"], arrays["xcoords"]], axis=1),
        probe=arrays["probeGuess"],
        obj=arrays["objectGuess"],
        metadata=json.loads(str(arrays["_metadata"])),
    )


@dataclass(frozen=True)
class Groups:
    """K groups of C = gridsize^2 neighbouring scans, the model's batch unit."""

    diffraction: np.ndarray  # (K, C, N, N) float32
    offsets: np.ndarray  # (K, C, 2) float32 (dy, dx) of each member from its group's centroid
    members: np.ndarray  # (K, C) int scan indices
    coords: np.ndarray  # (K, C, 2) float64 member scan centres


def group(dataset: Dataset, n_images: int, gridsize: int) -> Groups:
    """The first `n_images` scans, each with its gridsize^2 - 1 nearest neighbours among them."""
    count = min(n_images, dataset.diffraction.shape[0])
    if count < gridsize * gridsize:
        raise ValueError(f"need at least {gridsize * gridsize} scans for gridsize {gridsize}, have {count}")
    coords = dataset.coords[:count]
    distances = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=-1)
    members = np.argsort(distances, axis=1, kind="stable")[:, : gridsize * gridsize]
    member_coords = coords[members]
    offsets = member_coords - member_coords.mean(axis=1, keepdims=True)
    return Groups(
        diffraction=dataset.diffraction[members].astype(np.float32),
        offsets=offsets.astype(np.float32),
        members=members,
        coords=member_coords,
    )
