"""Global average pooling: one number per feature map, the mean over its positions.

It is what makes class activation maps possible (Zhou et al. 2016, sec. 2): the class score is a
weighted sum of the spatial means of the last feature maps. Backward spreads dy / (H*W) evenly, the
same in all three visualisation modes.
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.layers.base import Layer


class GlobalAvgPool2D(Layer):
    """(N, C, H, W) -> (N, C): the mean of each feature map."""

    kind = "GlobalAvgPool2D"
    is_global_pool = True

    def output_shape(self, shape):
        self.check_rank(shape, 3, "(N, C, H, W)")
        return (shape[0],)

    def window(self):
        return None  # every output reads its whole map

    def forward(self, x, train=False, rng=None):
        self.output_shape(x.shape[1:])
        return x.mean(axis=(2, 3)), x.shape

    def backward(self, dy, cache, mode="gradient", need_params=False):
        n, c, h, w = cache
        xp = get_xp(dy)
        dx = xp.broadcast_to((dy / (h * w))[:, :, None, None], cache)
        return xp.ascontiguousarray(dx), None
