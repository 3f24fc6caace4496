"""What the shared CLI needs from a framework: the contract `torch_pinn` and `tf_pinn` fulfil.

Arrays cross this boundary as numpy in one layout: diffraction (B, C, N, N) float32 measured amplitude,
offsets (B, C, 2) float32 (dy, dx) of each scan from its group's centroid, weights in the layout of
`architecture`. Everything about batching, data, bundles, images and metrics stays framework-neutral.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModelConfig:
    gridsize: int
    probe: np.ndarray  # (N, N) complex64
    intensity_scale: float
    device: str  # the framework's device name, from Framework.select_device
    learning_rate: float = 1e-3
    translate: str = ""  # the framework's translation layer, one of Framework.translations
    jit: bool = False


@dataclass(frozen=True)
class Prediction:
    patches: np.ndarray  # (B, C, N, N) complex64 object patches after neighbour merging
    amplitude: np.ndarray  # (B, C, N, N) float32 predicted diffraction amplitude, sqrt(photons)


class PinnModel(ABC):
    """One network with its physics layer, loss and optimiser state."""

    @abstractmethod
    def train_step(self, diffraction: np.ndarray, offsets: np.ndarray) -> float:
        """One Adam step on a batch; returns the batch's mean Poisson NLL before the step."""

    @abstractmethod
    def predict(self, diffraction: np.ndarray, offsets: np.ndarray) -> Prediction: ...

    @abstractmethod
    def loss(self, diffraction: np.ndarray, offsets: np.ndarray) -> float:
        """Mean Poisson NLL of a batch without training."""

    @abstractmethod
    def weights(self) -> dict[str, np.ndarray]:
        """Current weights in the shared layout."""


class Framework(ABC):
    """A deep-learning stack able to build the model."""

    name: str = ""
    translations: tuple[str, ...] = ()  # selectable translation layers; the first is the default
    supports_jit: bool = False

    @property
    @abstractmethod
    def version(self) -> str: ...

    def default_translation(self) -> str:
        return self.translations[0] if self.translations else ""

    @abstractmethod
    def select_device(self, accelerator: str) -> tuple[str, str]:
        """(device name for ModelConfig, human description); raises RuntimeError when unavailable."""

    @abstractmethod
    def build(self, weights: dict[str, np.ndarray], config: ModelConfig) -> PinnModel: ...
