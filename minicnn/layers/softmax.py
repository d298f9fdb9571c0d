"""Softmax over classes: (N, K) -> (N, K) probabilities.

The visualisation tools never backpropagate through it: Simonyan et al. (2013, sec. 2) use the
unnormalised score S_c because maximising the probability can be done by minimising other classes.
Backward: dx = y * (dy - sum_k dy_k y_k).
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.layers.base import Layer


def softmax(s, axis=-1):
    """Numerically stable softmax of scores s along ``axis``."""
    xp = get_xp(s)
    e = xp.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class Softmax(Layer):
    """(N, K) scores -> (N, K) probabilities."""

    kind = "Softmax"

    def output_shape(self, shape):
        self.check_rank(shape, 1, "(N, classes)")
        return tuple(shape)

    def window(self):
        return None  # every probability depends on every score

    def forward(self, x, train=False, rng=None):
        self.output_shape(x.shape[1:])
        y = softmax(x, axis=1)
        return y, y

    def backward(self, dy, cache, mode="gradient", need_params=False):
        y = cache
        return y * (dy - (dy * y).sum(axis=1, keepdims=True)), None
