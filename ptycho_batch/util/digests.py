"""File digests: artifacts' SHA-1 in reports and cache keys, a SIF image's SHA-256 as its identity."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in 1 MiB blocks (bundles and images can be large)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_digest(root: Path, algorithm: str = "sha1") -> str:
    """Digest of a directory: every entry's relative path with its file digest (a symlink by its target
    text, never followed), in sorted order, so the same files give the same digest wherever they lie."""
    digest = hashlib.new(algorithm)
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            digest.update(f"L {relative} -> {path.readlink()}\n".encode())
        elif path.is_file():
            digest.update(f"F {relative} {file_digest(path, algorithm)}\n".encode())
        elif path.is_dir():
            digest.update(f"D {relative}\n".encode())
    return digest.hexdigest()


def path_digest(path: Path, algorithm: str) -> str:
    """A file's digest, or a directory's `tree_digest` (directory artifacts, data directories)."""
    return tree_digest(path, algorithm) if path.is_dir() and not path.is_symlink() else file_digest(path, algorithm)
