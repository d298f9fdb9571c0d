"""Max-pooling that records its switches (Zeiler & Fergus 2013, sec. 2.1).

Forward keeps, for every output, the position of its maximum (the "switch"). Backward puts each
incoming signal back at its switch: the gradient of max-pooling and DeconvNet's unpooling are the same
operation, so no backward rule changes this layer. The two are computed by two codes: ``backward``
by the max-pool kernel's scatter (minicnn/kernels/maxpool.py), ``reverse`` by ``unpool`` below,
written as the paper draws it, so that the equivalence table compares them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.backend import get_xp
from minicnn.geometry import Window, output_size
from minicnn.kernels.maxpool import maxpool_backward, maxpool_forward
from minicnn.layers.base import Layer


class PoolCache(NamedTuple):
    switches: object  # int32 (N, C, Ho, Wo): ky * kw + kx of each maximum
    input_shape: tuple


def unpool(signal, switches, input_shape, kernel, stride):
    """Unpooling (Zeiler & Fergus 2013, sec. 2.1): put each pooled signal back at its switch.

    signal: (N, C, Ho, Wo); switches: int (N, C, Ho, Wo), the index ky * kw + kx of the maximum
    inside the window of output (i, j), i.e. input position (i * sh + ky, j * sw + kx);
    input_shape: (N, C, H, W) of the pooled layer's input. Returns (N, C, H, W) of signal's dtype:
    zero except at switches. Where windows overlap (stride < kernel), two switches can land on one
    position; their signals add up (the position is the maximum of both windows).
    """
    xp = get_xp(signal)
    n, c, h, w = input_shape
    _, _, ho, wo = signal.shape
    kh, kw = kernel
    sh, sw = stride
    switches = xp.asarray(switches).astype(xp.int64)
    rows = xp.arange(ho)[:, None] * sh + switches // kw  # (N, C, Ho, Wo) by broadcasting
    cols = xp.arange(wo)[None, :] * sw + switches % kw
    maps = (xp.arange(n)[:, None] * c + xp.arange(c)[None, :])[:, :, None, None]  # which (n, c) map
    flat = (maps * h + rows) * w + cols
    # bincount sums the signals that land on the same position, on either device
    out = xp.bincount(flat.ravel(), weights=signal.ravel().astype(xp.float64), minlength=n * c * h * w)
    return out.astype(signal.dtype).reshape(n, c, h, w)


def pad_lowest(x, padding: int):
    """x (N, C, H, W) with ``padding`` rows and columns of -inf on every side: a padded cell never
    wins a window's maximum (torch.nn.MaxPool2d's padding), so every switch points at a real input."""
    xp = get_xp(x)
    n, c, h, w = x.shape
    out = xp.full((n, c, h + 2 * padding, w + 2 * padding), -xp.inf, dtype=x.dtype)
    out[:, :, padding : padding + h, padding : padding + w] = x
    return out


def crop(x, padding: int):
    """The inverse of the padding's geometry: (N, C, H + 2p, W + 2p) -> (N, C, H, W)."""
    if not padding:
        return x
    return get_xp(x).ascontiguousarray(x[:, :, padding:-padding, padding:-padding])


class MaxPool2D(Layer):
    """Max-pool over kh x kw windows; (N, C, H, W) -> (N, C, Ho, Wo).

    ``padding`` p adds p cells of -inf on every side (ResNet's stem: 3x3, stride 2, padding 1); p is
    at most half the window, as torch requires, so every window holds a real input. Switches index
    the padded input; backward and the reverse stage route into it and crop the padding off.
    """

    kind = "MaxPool2D"
    is_pooling = True
    equivalence_row = ("max over window", "R at switch", "dX at argmax")

    def __init__(self, kernel_size=2, stride=None, padding=0, name=None):
        super().__init__(name)
        ks = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
        self.kernel_size = (int(ks[0]), int(ks[1]))
        self.stride = int(stride) if stride is not None else self.kernel_size[0]
        self.padding = int(padding)
        if min(*self.kernel_size, self.stride) < 1:
            raise self.error("kernel size and stride must be positive")
        if not 0 <= 2 * self.padding <= min(self.kernel_size):
            raise self.error(f"padding must be between 0 and half the window, got {padding}")

    def config(self):
        config = {"kernel_size": list(self.kernel_size), "stride": self.stride}
        if self.padding:  # written only when used, so files of unpadded pools stay as they were
            config["padding"] = self.padding
        return config

    def output_shape(self, shape):
        self.check_rank(shape, 3, "(N, C, H, W)")
        c, h, w = shape
        kh, kw = self.kernel_size
        p = self.padding
        if h + 2 * p < kh or w + 2 * p < kw:
            raise self.error(f"input {h}x{w} is smaller than the {kh}x{kw} pooling window")
        return c, output_size(h, kh, self.stride, p), output_size(w, kw, self.stride, p)

    def window(self):
        return Window(self.kernel_size, (self.stride, self.stride), (self.padding, self.padding))

    def _padded_shape(self, shape):
        n, c, h, w = shape
        return n, c, h + 2 * self.padding, w + 2 * self.padding

    def forward(self, x, train=False, rng=None):
        self.output_shape(x.shape[1:])
        padded = pad_lowest(x, self.padding) if self.padding else x
        y, switches = maxpool_forward(padded, *self.kernel_size, self.stride)
        return y, PoolCache(switches, x.shape)

    def forward_padded(self, x):
        if self.padding:  # a region cut with zeros would let a zero win where -inf never does
            raise self.error("a region carrying zero padding cannot stand for -inf padding")
        return self.forward(x)[0]

    def backward(self, dy, cache, need_params=False):
        shape = self._padded_shape(cache.input_shape)
        dx = maxpool_backward(dy, cache.switches, shape, *self.kernel_size, self.stride)
        return crop(dx, self.padding), None

    def reverse(self, signal, cache, input_shape):
        stride = (self.stride, self.stride)
        padded = unpool(signal, cache.switches, self._padded_shape(input_shape), self.kernel_size, stride)
        return crop(padded, self.padding)

    def torch_module(self, nn):
        return nn.MaxPool2d(self.kernel_size, stride=self.stride, padding=self.padding)

    def keras_layers(self, keras, input_shape):
        pool = keras.layers.MaxPooling2D(self.kernel_size, strides=self.stride, padding="valid")
        if not self.padding:
            return [pool], {}
        # Keras pads max-pooling asymmetrically ("same") or with zeros: pad with -inf explicitly
        p = self.padding
        pad = keras.layers.Lambda(
            lambda t: keras.ops.pad(t, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=-float("inf"))
        )
        return [pad, pool], {}
