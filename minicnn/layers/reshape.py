"""Flatten: (N, C, H, W) -> (N, C*H*W), a change of shape only."""

from __future__ import annotations

from minicnn.layers.base import Layer


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in (C, H, W) order (NCHW memory order; Keras uses (H, W, C))."""

    kind = "Flatten"

    def output_shape(self, shape):
        size = 1
        for d in shape:
            size *= d
        return (size,)

    def window(self):
        return None  # each output is one input, but the spatial layout is gone

    def forward(self, x, train=False, rng=None):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dy, cache, mode="gradient", need_params=False):
        return dy.reshape(cache), None
