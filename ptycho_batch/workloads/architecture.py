"""The model's layer table and initialisation, shared so both frameworks build the same network.

A small convolutional encoder-decoder: gridsize^2 diffraction amplitudes in (channels), for each an
object patch out (sigmoid amplitude, pi*tanh phase). Weights live in one framework-neutral layout,
`<layer>/kernel` (3, 3, in, out) and `<layer>/bias` (out,), which is also the layout on disk; each
framework converts at its boundary. Initial weights come from numpy with the run's seed, so a torch
and a TF model with the same seed start identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KERNEL = 3
WIDTH = 16


@dataclass(frozen=True)
class Conv:
    name: str
    in_channels: int
    out_channels: int
    relu: bool = True


def layers(gridsize: int) -> list[Conv]:
    """enc1, pool, enc2, pool, mid, up, dec2 (+enc2 skip), up, dec1 (+enc1 skip), out."""
    c = gridsize * gridsize
    return [
        Conv("enc1", c, WIDTH),
        Conv("enc2", WIDTH, 2 * WIDTH),
        Conv("mid", 2 * WIDTH, 2 * WIDTH),
        Conv("dec2", 4 * WIDTH, WIDTH),
        Conv("dec1", 2 * WIDTH, WIDTH),
        Conv("out", WIDTH, 2 * c, relu=False),
    ]


def initial_weights(gridsize: int, seed: int) -> dict[str, np.ndarray]:
    """He-uniform kernels (uniform with variance 1/fan_in for the linear output layer), zero biases."""
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}
    for conv in layers(gridsize):
        fan_in = KERNEL * KERNEL * conv.in_channels
        bound = np.sqrt((6.0 if conv.relu else 3.0) / fan_in)
        shape = (KERNEL, KERNEL, conv.in_channels, conv.out_channels)
        weights[f"{conv.name}/kernel"] = rng.uniform(-bound, bound, shape).astype(np.float32)
        weights[f"{conv.name}/bias"] = np.zeros(conv.out_channels, np.float32)
    return weights
