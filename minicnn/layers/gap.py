"""Global average pooling: one number per feature map, the mean over its positions.

It is what makes class activation maps possible (Zhou et al. 2016, sec. 2): the class score is a
weighted sum of the spatial means of the last feature maps. Backward spreads dy / (H*W) evenly, the
same under every backward rule; ``spread_average`` is the same spread written as DeconvNet's reverse
stage (a repeat, not a broadcast), for the equivalence table.
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.layers.base import Layer
from minicnn.layers.relevance import fixed_relevance


def spread_average(signal, input_shape):
    """The reverse of global average pooling: signal (N, C) -> (N, C, H, W), each map's value / (H W)."""
    xp = get_xp(signal)
    n, c, h, w = input_shape
    return xp.repeat(signal / (h * w), h * w, axis=1).reshape(n, c, h, w)


class GlobalAvgPool2D(Layer):
    """(N, C, H, W) -> (N, C): the mean of each feature map."""

    kind = "GlobalAvgPool2D"
    is_global_pool = True
    reads_rule = True  # LRP rules: the z-rule of its fixed weights (minicnn/layers/relevance.py)
    equivalence_row = ("mean over h, w", "R / hw spread", "dX / hw spread")

    def output_shape(self, shape):
        self.check_rank(shape, 3, "(N, C, H, W)")
        return (shape[0],)

    def window(self):
        return None  # every output reads its whole map

    def forward(self, x, train=False, rng=None):
        self.output_shape(x.shape[1:])
        return x.mean(axis=(2, 3)), x.shape

    def backward(self, dy, cache, mode="gradient", need_params=False):
        if not isinstance(mode, str):  # an LRP rule: the z-rule through this backward
            return fixed_relevance(mode, dy, lambda g: self.backward(g, cache)[0]), None
        n, c, h, w = cache
        xp = get_xp(dy)
        dx = xp.broadcast_to((dy / (h * w))[:, :, None, None], cache)
        return xp.ascontiguousarray(dx), None

    def reverse(self, signal, cache, input_shape):
        return spread_average(signal, input_shape)

    def torch_module(self, nn):
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def keras_layers(self, keras, input_shape):
        return [keras.layers.GlobalAveragePooling2D()], {}
