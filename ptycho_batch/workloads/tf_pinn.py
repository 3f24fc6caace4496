"""The PINN in TensorFlow: the network of `architecture`, two translation layers, physics, Poisson loss.

Translation layers for gridsize > 1: `xla`, a bilinear gather in plain TF ops that XLA compiles, and
`native`, tf.raw_ops.ImageProjectiveTransformV3, which has no XLA kernel and so fails under `--jit`
(upstream's real failure). The default follows USE_XLA_TRANSLATE ("0" selects native), as upstream.
Adam is written out (same update as torch.optim.Adam) so that no Keras import is needed.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from ptycho_batch.workloads.model_api import Framework, ModelConfig, PinnModel, Prediction
from ptycho_batch.workloads.physics import LOG_EPS

BETA1, BETA2, ADAM_EPS = 0.9, 0.999, 1e-8


def translate_xla(images: tf.Tensor, shifts: tf.Tensor) -> tf.Tensor:
    """Shift (M, H, W, ch) images by (M, 2) (dy, dx), bilinear, zeros outside, with gathers XLA can compile."""
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    source_y = tf.range(height, dtype=tf.float32)[None, :, None] - shifts[:, 0, None, None]
    source_x = tf.range(width, dtype=tf.float32)[None, None, :] - shifts[:, 1, None, None]
    source_y, source_x = source_y + tf.zeros_like(source_x), source_x + tf.zeros_like(source_y)
    y0, x0 = tf.floor(source_y), tf.floor(source_x)
    wy, wx = source_y - y0, source_x - x0
    flat = tf.reshape(images, (-1, height * width, channels))
    result = tf.zeros_like(flat)
    for dy, dx, weight in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx), (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
        y, x = y0 + dy, x0 + dx
        inside = tf.cast((y >= 0) & (y <= height - 1) & (x >= 0) & (x <= width - 1), tf.float32)
        index = tf.cast(tf.clip_by_value(y, 0, height - 1) * width + tf.clip_by_value(x, 0, width - 1), tf.int32)
        values = tf.gather(flat, tf.reshape(index, (-1, height * width)), batch_dims=1)
        result += values * tf.reshape(weight * inside, (-1, height * width, 1))
    return tf.reshape(result, (-1, height, width, channels))


def translate_native(images: tf.Tensor, shifts: tf.Tensor) -> tf.Tensor:
    """The same shift with ImageProjectiveTransformV3 (output (x, y) reads input (x - dx, y - dy))."""
    ones, zeros = tf.ones_like(shifts[:, 0]), tf.zeros_like(shifts[:, 0])
    transforms = tf.stack([ones, zeros, -shifts[:, 1], zeros, ones, -shifts[:, 0], zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=tf.constant(0.0), interpolation="BILINEAR", fill_mode="CONSTANT")


TRANSLATIONS = {"xla": translate_xla, "native": translate_native}


def merge_neighbours(patches: tf.Tensor, offsets: tf.Tensor, translate) -> tf.Tensor:
    """Make the C patches (B, C, N, N) of each group agree: move to the group frame, average, move back."""
    count, n = patches.shape[1], patches.shape[2]
    real, imag = tf.math.real(patches), tf.math.imag(patches)
    stacked = tf.reshape(tf.stack([real, imag, tf.ones_like(real)], axis=-1), (-1, n, n, 3))
    shifts = tf.reshape(offsets, (-1, 2))
    moved = tf.reduce_sum(tf.reshape(translate(stacked, shifts), (-1, count, n, n, 3)), axis=1)
    merged = moved[..., :2] / tf.maximum(moved[..., 2:], 1.0)
    back = tf.reshape(translate(tf.repeat(merged, count, axis=0), -shifts), (-1, count, n, n, 2))
    return tf.complex(back[..., 0], back[..., 1])


def poisson_nll(predicted: tf.Tensor, measured: tf.Tensor) -> tf.Tensor:
    rate = predicted**2
    return tf.reduce_mean(rate - measured**2 * tf.math.log(rate + LOG_EPS))


class TfPinn(PinnModel):
    def __init__(self, weights: dict[str, np.ndarray], config: ModelConfig) -> None:
        self.config = config
        with tf.device(config.device):
            self.params = {name: tf.Variable(value, name=name.replace("/", "_")) for name, value in weights.items()}
            self.moments = {name: (tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v)))
                            for name, v in self.params.items()}
            self.step = tf.Variable(0.0)
            self.probe = tf.constant(config.probe)
        self._train = tf.function(self._train_step, jit_compile=config.jit)
        self._forward = tf.function(self._predict, jit_compile=config.jit)
        self._translate = TRANSLATIONS[config.translate]

    def _conv(self, name: str, x: tf.Tensor, relu: bool = True) -> tf.Tensor:
        y = tf.nn.conv2d(x, self.params[f"{name}/kernel"], strides=1, padding="SAME") + self.params[f"{name}/bias"]
        return tf.nn.relu(y) if relu else y

    def _patches(self, diffraction: tf.Tensor, offsets: tf.Tensor) -> tf.Tensor:
        x = tf.transpose(diffraction, (0, 2, 3, 1)) / self.config.intensity_scale
        up = lambda t: tf.repeat(tf.repeat(t, 2, axis=1), 2, axis=2)  # noqa: E731
        pool = lambda t: tf.nn.avg_pool2d(t, 2, 2, "VALID")  # noqa: E731
        e1 = self._conv("enc1", x)
        e2 = self._conv("enc2", pool(e1))
        mid = self._conv("mid", pool(e2))
        d2 = self._conv("dec2", tf.concat([up(mid), e2], axis=-1))
        d1 = self._conv("dec1", tf.concat([up(d2), e1], axis=-1))
        out = tf.transpose(self._conv("out", d1, relu=False), (0, 3, 1, 2))
        count = diffraction.shape[1]
        amplitude, phase = tf.sigmoid(out[:, :count]), np.pi * tf.tanh(out[:, count:])
        patches = tf.complex(amplitude * tf.cos(phase), amplitude * tf.sin(phase))
        return merge_neighbours(patches, offsets, self._translate) if count > 1 else patches

    def _amplitude(self, patches: tf.Tensor) -> tf.Tensor:
        n = patches.shape[-1]
        field = tf.signal.fftshift(tf.signal.fft2d(self.probe * patches), axes=(-2, -1))
        return tf.abs(field) / n * self.config.intensity_scale

    def _train_step(self, diffraction: tf.Tensor, offsets: tf.Tensor) -> tf.Tensor:
        names = list(self.params)
        with tf.GradientTape() as tape:
            loss = poisson_nll(self._amplitude(self._patches(diffraction, offsets)), diffraction)
        gradients = tape.gradient(loss, [self.params[n] for n in names])
        self.step.assign_add(1.0)
        correction1, correction2 = 1 - BETA1**self.step, 1 - BETA2**self.step
        for name, gradient in zip(names, gradients, strict=True):
            m, v = self.moments[name]
            m.assign(BETA1 * m + (1 - BETA1) * gradient)
            v.assign(BETA2 * v + (1 - BETA2) * gradient * gradient)
            self.params[name].assign_sub(
                self.config.learning_rate * (m / correction1) / (tf.sqrt(v / correction2) + ADAM_EPS))
        return loss

    def _predict(self, diffraction: tf.Tensor, offsets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        patches = self._patches(diffraction, offsets)
        amplitude = self._amplitude(patches)
        return patches, amplitude, poisson_nll(amplitude, diffraction)

    def train_step(self, diffraction: np.ndarray, offsets: np.ndarray) -> float:
        with tf.device(self.config.device):
            return float(self._train(tf.constant(diffraction), tf.constant(offsets)))

    def predict(self, diffraction: np.ndarray, offsets: np.ndarray) -> Prediction:
        with tf.device(self.config.device):
            patches, amplitude, _ = self._forward(tf.constant(diffraction), tf.constant(offsets))
        return Prediction(patches=patches.numpy(), amplitude=amplitude.numpy())

    def loss(self, diffraction: np.ndarray, offsets: np.ndarray) -> float:
        with tf.device(self.config.device):
            return float(self._forward(tf.constant(diffraction), tf.constant(offsets))[2])

    def weights(self) -> dict[str, np.ndarray]:
        return {name: value.numpy() for name, value in self.params.items()}


class TfFramework(Framework):
    name = "tf"
    translations = ("xla", "native")
    supports_jit = True

    @property
    def version(self) -> str:
        return tf.__version__

    def default_translation(self) -> str:
        return "native" if os.environ.get("USE_XLA_TRANSLATE") == "0" else "xla"

    def select_device(self, accelerator: str) -> tuple[str, str]:
        gpus = tf.config.list_physical_devices("GPU")
        if accelerator in ("auto", "cuda") and gpus:
            return "/GPU:0", f"/GPU:0 ({gpus[0].name})"
        if accelerator == "cuda":
            raise RuntimeError("--accelerator cuda: TensorFlow sees no GPU "
                               "(tf.config.list_physical_devices('GPU') is empty)")
        return "/CPU:0", "/CPU:0"

    def build(self, weights: dict[str, np.ndarray], config: ModelConfig) -> PinnModel:
        return TfPinn(weights, config)


FRAMEWORK = TfFramework()
