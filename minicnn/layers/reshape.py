"""Layers that only change shape: Flatten and global average pooling.

GlobalAvgPool2D is what makes class activation maps possible (Zhou et al. 2016, sec. 2): the class
score is a weighted sum of the spatial means of the last feature maps.
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.layers.base import Layer


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in (C, H, W) order (NCHW memory order; Keras uses (H, W, C))."""

    kind = "Flatten"

    def output_shape(self, shape):
        size = 1
        for d in shape:
            size *= d
        return (size,)

    def forward(self, x, train=False, rng=None):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dy, cache, mode="gradient", need_params=False):
        return dy.reshape(cache), None


class GlobalAvgPool2D(Layer):
    """(N, C, H, W) -> (N, C): the mean of each feature map. Backward spreads dy / (H*W) evenly."""

    kind = "GlobalAvgPool2D"

    def output_shape(self, shape):
        self.check_rank(shape, 3, "(N, C, H, W)")
        return (shape[0],)

    def forward(self, x, train=False, rng=None):
        self.output_shape(x.shape[1:])
        return x.mean(axis=(2, 3)), x.shape

    def backward(self, dy, cache, mode="gradient", need_params=False):
        n, c, h, w = cache
        xp = get_xp(dy)
        dx = xp.broadcast_to((dy / (h * w))[:, :, None, None], cache)
        return xp.ascontiguousarray(dx), None
