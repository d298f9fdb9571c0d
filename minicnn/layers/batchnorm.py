"""Batch normalisation at inference (Ioffe & Szegedy 2015, sec. 3.1): a fixed affine map per channel.

    y[n, c] = gamma[c] * (x[n, c] - mean[c]) / sqrt(var[c] + eps) + beta[c]
            = a[c] * x[n, c] + (beta[c] - a[c] * mean[c]),        a[c] = gamma[c] / sqrt(var[c] + eps)

At inference the running statistics replace the batch's, so the layer is linear in x with a
diagonal Jacobian: dx = a * dy under every backward rule, and the DeconvNet reverse stage is the
same diagonal map (its own transpose). Parameters are named as torch.nn.BatchNorm2d names them
(weight = gamma, bias = beta, running_mean, running_var). Where a BatchNorm directly follows a
convolution, loaders fold the pair into one convolution instead (minicnn/io/fold_batchnorm.py).
``train=True`` changes nothing: the running statistics are used, never the batch's, so a trained
network learns gamma and beta of a fixed per-channel affine map (the statistics' gradients are zero).
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp, to_numpy
from minicnn.kernels.relu import rectify_in_place
from minicnn.layers.base import Layer
from minicnn.layers.relevance import relevance

TORCH_EPS = 1e-5  # torch.nn.BatchNorm2d's default


def channel_scale(gamma, var, eps: float):
    """a[c] = gamma[c] / sqrt(var[c] + eps), (C,)."""
    xp = get_xp(gamma)
    return gamma / xp.sqrt(var + eps)


def scale_channels(signal, scale):
    """signal (N, C, H, W) times scale[c] on every channel: the reverse stage's diagonal map."""
    return signal * scale.astype(signal.dtype, copy=False)[None, :, None, None]


class BatchNorm2D(Layer):
    """Inference BatchNorm over the channels of (N, C, H, W); parameters (C,) each."""

    kind = "BatchNorm2D"
    has_params = True
    reads_rule = True  # LRP rules, as the linear map a x + b (minicnn/layers/relevance.py)
    fuses_rectifier = True  # max(y, 0) in place on its own new output
    equivalence_row = ("a X + b, a = g / s", "R a", "dX a")

    def __init__(self, channels, eps=TORCH_EPS, name=None):
        super().__init__(name)
        self.channels, self.eps = int(channels), float(eps)
        if self.channels < 1:
            raise self.error("channels must be positive")
        if not self.eps >= 0:
            raise self.error(f"eps must be >= 0, got {eps!r}")
        self.weight = self.bias = self.running_mean = self.running_var = None  # (C,) each

    def config(self):
        return {"channels": self.channels, "eps": self.eps}

    @property
    def params(self):
        return {
            "weight": self.weight,
            "bias": self.bias,
            "running_mean": self.running_mean,
            "running_var": self.running_var,
        }

    def param_shapes(self):
        return {key: (self.channels,) for key in ("weight", "bias", "running_mean", "running_var")}

    def init_params(self, rng, dtype=np.float32):
        """torch's initial state: gamma 1, beta 0, mean 0, variance 1 (the identity up to eps)."""
        c = self.channels
        self.weight, self.bias = np.ones(c, dtype), np.zeros(c, dtype)
        self.running_mean, self.running_var = np.zeros(c, dtype), np.ones(c, dtype)

    def output_shape(self, shape):
        self.check_rank(shape, 3, "(N, C, H, W)")
        if shape[0] != self.channels:
            raise self.error(f"expected {self.channels} input channels, got {shape[0]}")
        return tuple(shape)

    def _affine(self, dtype):
        """(a, b) of y = a x + b per channel, (C,) each in ``dtype``, computed in the parameters' dtype."""
        scale = channel_scale(self.weight, self.running_var, self.eps)
        shift = self.bias - scale * self.running_mean
        return scale.astype(dtype, copy=False), shift.astype(dtype, copy=False)

    def forward(self, x, train=False, rng=None, rectify=False):
        self.output_shape(x.shape[1:])
        scale, shift = self._affine(x.dtype)
        y = x * scale[None, :, None, None] + shift[None, :, None, None]
        return (rectify_in_place(y) if rectify else y), x

    def input_gradient_cache(self, cache):
        return None  # the cache is the input, read by the parameter gradients alone

    def backward(self, dy, cache, mode="gradient", need_params=False):
        if not isinstance(mode, str):  # an LRP rule: relevance, no parameter gradients
            return self.relevance(dy, mode), None
        scale, _ = self._affine(dy.dtype)
        dx = dy * scale[None, :, None, None]
        if not need_params:
            return dx, None
        # y = gamma * xhat + beta, xhat = (x - mean) / sqrt(var + eps): the statistics are constants
        xhat = (cache - self.running_mean[None, :, None, None]) / get_xp(dy).sqrt(
            self.running_var + self.eps
        )[None, :, None, None]
        xp = get_xp(dy)
        # the running statistics are not learned by gradient: theirs are zero, so a step keeps them
        still = xp.zeros(self.channels, dtype=dy.dtype)
        grads = {"weight": (dy * xhat).sum(axis=(0, 2, 3)), "bias": dy.sum(axis=(0, 2, 3))}
        return dx, {**grads, "running_mean": still, "running_var": still.copy()}

    def relevance(self, r, at):
        """R_in (N, C, H, W) from the relevance r of the outputs under ``at`` (a rules.LayerRule):
        the layer as the linear map with weight a (diagonal) and bias b."""

        def forward(x, a, b):
            y = x * a[None, :, None, None]
            return y if b is None else y + b[None, :, None, None]

        def transpose(g, a):
            return g * a[None, :, None, None]

        scale, shift = self._affine(r.dtype)
        return relevance(at.rule, at.input, at.output, r, forward, transpose, scale, shift)

    def reverse(self, signal, cache, input_shape):
        return scale_channels(signal, channel_scale(self.weight, self.running_var, self.eps))

    def torch_module(self, nn):
        return nn.BatchNorm2d(self.channels, eps=self.eps)

    def keras_layers(self, keras, input_shape):
        bn = keras.layers.BatchNormalization(axis=-1, epsilon=self.eps)
        values = [to_numpy(v) for v in (self.weight, self.bias, self.running_mean, self.running_var)]
        return [bn], {bn: values}
