"""Grayscale PNG writing with zlib alone (no matplotlib or PIL in the backend environments)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Min-max scale a real image to 0..255 (a constant image becomes black)."""
    image = np.asarray(image, dtype=np.float64)
    low, high = float(np.min(image)), float(np.max(image))
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return np.round(scaled * 255).astype(np.uint8)


def write_png(path: Path, image: np.ndarray) -> None:
    """Write a 2-D real array as an 8-bit grayscale PNG, min-max scaled."""
    pixels = to_uint8(image)
    height, width = pixels.shape
    rows = b"".join(b"\x00" + row.tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, 9))
                     + _chunk(b"IEND", b""))


def tile(images: np.ndarray, columns: int = 4, gap: int = 1) -> np.ndarray:
    """Arrange (K, H, W) images, each min-max scaled on its own, in a grid separated by `gap` pixels."""
    count, height, width = images.shape
    rows = -(-count // columns)
    grid = np.zeros((rows * (height + gap) - gap, columns * (width + gap) - gap))
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        grid[row * (height + gap): row * (height + gap) + height,
             column * (width + gap): column * (width + gap) + width] = to_uint8(image) / 255.0
    return grid
