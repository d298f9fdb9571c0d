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


class MaxPool2D(Layer):
    """Max-pool over kh x kw windows ('valid' padding); (N, C, H, W) -> (N, C, Ho, Wo)."""

    kind = "MaxPool2D"
    is_pooling = True
    equivalence_row = ("max over window", "R at switch", "dX at argmax")

    def __init__(self, kernel_size=2, stride=None, name=None):
        super().__init__(name)
        ks = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
        self.kernel_size = (int(ks[0]), int(ks[1]))
        self.stride = int(stride) if stride is not None else self.kernel_size[0]
        if min(*self.kernel_size, self.stride) < 1:
            raise self.error("kernel size and stride must be positive")

    def config(self):
        return {"kernel_size": list(self.kernel_size), "stride": self.stride}

    def output_shape(self, shape):
        self.check_rank(shape, 3, "(N, C, H, W)")
        c, h, w = shape
        kh, kw = self.kernel_size
        if h < kh or w < kw:
            raise self.error(f"input {h}x{w} is smaller than the {kh}x{kw} pooling window")
        return c, output_size(h, kh, self.stride, 0), output_size(w, kw, self.stride, 0)

    def window(self):
        return Window(self.kernel_size, (self.stride, self.stride), (0, 0))

    def forward(self, x, train=False, rng=None):
        self.output_shape(x.shape[1:])
        y, switches = maxpool_forward(x, *self.kernel_size, self.stride)
        return y, PoolCache(switches, x.shape)

    def backward(self, dy, cache, need_params=False):
        dx = maxpool_backward(dy, cache.switches, cache.input_shape, *self.kernel_size, self.stride)
        return dx, None

    def reverse(self, signal, cache, input_shape):
        return unpool(signal, cache.switches, input_shape, self.kernel_size, (self.stride, self.stride))

    def torch_module(self, nn):
        return nn.MaxPool2d(self.kernel_size, stride=self.stride)

    def keras_layers(self, keras, input_shape):
        return [keras.layers.MaxPooling2D(self.kernel_size, strides=self.stride, padding="valid")], {}
