"""Max-pooling that records its switches (Zeiler & Fergus 2013, sec. 2.1).

Forward keeps, for every output, the position of its maximum (the "switch"). Backward puts each
incoming signal back at its switch: the gradient of max-pooling and DeconvNet's unpooling are the same
operation, so this layer ignores the backward mode.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.geometry import Window, output_size
from minicnn.kernels.maxpool import maxpool_backward, maxpool_forward
from minicnn.layers.base import Layer


class PoolCache(NamedTuple):
    switches: object  # int32 (N, C, Ho, Wo): ky * kw + kx of each maximum
    input_shape: tuple


class MaxPool2D(Layer):
    """Max-pool over kh x kw windows ('valid' padding); (N, C, H, W) -> (N, C, Ho, Wo)."""

    kind = "MaxPool2D"
    is_pooling = True

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

    def backward(self, dy, cache, mode="gradient", need_params=False):
        dx = maxpool_backward(dy, cache.switches, cache.input_shape, *self.kernel_size, self.stride)
        return dx, None
