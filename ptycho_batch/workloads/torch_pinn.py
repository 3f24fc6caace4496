"""The PINN in PyTorch: the network of `architecture`, grid_sample translation, physics layer, Poisson loss."""

from __future__ import annotations

import os

# libgomp spin-waits by default; on a shared CPU (campaign jobs side by side, CI) that made epochs up to
# 10x slower. Read once when torch loads libgomp, so it must be set before the import; users may override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

from ptycho_batch.workloads.model_api import Framework, ModelConfig, PinnModel, Prediction
from ptycho_batch.workloads.physics import LOG_EPS


def translate(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Shift (M, ch, H, W) images by (M, 2) (dy, dx) pixels, bilinear, zeros outside: out(y, x) = in(y-dy, x-dx)."""
    _, _, height, width = images.shape
    ys = torch.arange(height, dtype=images.dtype, device=images.device)
    xs = torch.arange(width, dtype=images.dtype, device=images.device)
    source_y = (ys[None, :, None] - shifts[:, 0, None, None]).expand(-1, height, width)
    source_x = (xs[None, None, :] - shifts[:, 1, None, None]).expand(-1, height, width)
    grid = torch.stack([2 * source_x / (width - 1) - 1, 2 * source_y / (height - 1) - 1], dim=-1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def merge_neighbours(patches: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Make the C patches of each group agree: move each to the group frame, average, move back."""
    batch, count, n, _ = patches.shape
    ones = torch.ones_like(patches.real)
    stacked = torch.stack([patches.real, patches.imag, ones], dim=2).reshape(batch * count, 3, n, n)
    moved = translate(stacked, offsets.reshape(-1, 2)).reshape(batch, count, 3, n, n).sum(dim=1)
    merged = moved[:, :2] / moved[:, 2:].clamp(min=1.0)
    back = translate(merged.repeat_interleave(count, dim=0), -offsets.reshape(-1, 2)).reshape(batch, count, 2, n, n)
    return torch.complex(back[:, :, 0], back[:, :, 1])


def poisson_nll(predicted: torch.Tensor, measured: torch.Tensor) -> torch.Tensor:
    rate = predicted**2
    return torch.mean(rate - measured**2 * torch.log(rate + LOG_EPS))


class TorchPinn(PinnModel):
    def __init__(self, weights: dict[str, np.ndarray], config: ModelConfig) -> None:
        self.config = config
        self.device = torch.device(config.device)
        self.params = {name: torch.nn.Parameter(torch.from_numpy(self._to_torch(name, value)).to(self.device))
                       for name, value in weights.items()}
        self.probe = torch.from_numpy(config.probe).to(self.device)
        self.optimizer = torch.optim.Adam(self.params.values(), lr=config.learning_rate)

    @staticmethod
    def _to_torch(name: str, value: np.ndarray) -> np.ndarray:
        """Kernels (3, 3, in, out) -> (out, in, 3, 3)."""
        return np.ascontiguousarray(value.transpose(3, 2, 0, 1) if name.endswith("/kernel") else value)

    def _conv(self, name: str, x: torch.Tensor, relu: bool = True) -> torch.Tensor:
        y = F.conv2d(x, self.params[f"{name}/kernel"], self.params[f"{name}/bias"], padding=1)
        return F.relu(y) if relu else y

    def _patches(self, diffraction: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        x = diffraction / self.config.intensity_scale
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
        e1 = self._conv("enc1", x)
        e2 = self._conv("enc2", F.avg_pool2d(e1, 2))
        mid = self._conv("mid", F.avg_pool2d(e2, 2))
        d2 = self._conv("dec2", torch.cat([up(mid), e2], dim=1))
        d1 = self._conv("dec1", torch.cat([up(d2), e1], dim=1))
        out = self._conv("out", d1, relu=False)
        count = diffraction.shape[1]
        patches = torch.polar(torch.sigmoid(out[:, :count]), torch.pi * torch.tanh(out[:, count:]))
        return merge_neighbours(patches, offsets) if count > 1 else patches

    def _amplitude(self, patches: torch.Tensor) -> torch.Tensor:
        n = patches.shape[-1]
        field = torch.fft.fftshift(torch.fft.fft2(self.probe * patches), dim=(-2, -1))
        return torch.abs(field) / n * self.config.intensity_scale

    def _tensors(self, diffraction: np.ndarray, offsets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(diffraction).to(self.device), torch.from_numpy(offsets).to(self.device)

    def train_step(self, diffraction: np.ndarray, offsets: np.ndarray) -> float:
        measured, shifts = self._tensors(diffraction, offsets)
        self.optimizer.zero_grad(set_to_none=True)
        loss = poisson_nll(self._amplitude(self._patches(measured, shifts)), measured)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def loss(self, diffraction: np.ndarray, offsets: np.ndarray) -> float:
        measured, shifts = self._tensors(diffraction, offsets)
        return float(poisson_nll(self._amplitude(self._patches(measured, shifts)), measured))

    @torch.no_grad()
    def predict(self, diffraction: np.ndarray, offsets: np.ndarray) -> Prediction:
        patches = self._patches(*self._tensors(diffraction, offsets))
        return Prediction(patches=patches.cpu().numpy(), amplitude=self._amplitude(patches).cpu().numpy())

    def weights(self) -> dict[str, np.ndarray]:
        out = {}
        for name, value in self.params.items():
            array = value.detach().cpu().numpy()
            out[name] = np.ascontiguousarray(array.transpose(2, 3, 1, 0) if name.endswith("/kernel") else array)
        return out


class TorchFramework(Framework):
    name = "torch"

    @property
    def version(self) -> str:
        return torch.__version__

    def select_device(self, accelerator: str) -> tuple[str, str]:
        if accelerator in ("auto", "cuda") and torch.cuda.is_available():
            return "cuda:0", f"cuda:0 ({torch.cuda.get_device_name(0)})"
        if accelerator == "cuda":
            raise RuntimeError("--accelerator cuda: torch sees no CUDA device (torch.cuda.is_available() is False)")
        return "cpu", f"cpu ({torch.get_num_threads()} threads)"

    def build(self, weights: dict[str, np.ndarray], config: ModelConfig) -> PinnModel:
        return TorchPinn(weights, config)


FRAMEWORK = TorchFramework()
