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
    is_probability = True
    equivalence_row = ("softmax", "softmax backward", "softmax backward")

    def output_shape(self, shape):
        self.check_rank(shape, 1, "(N, classes)")
        return tuple(shape)

    def window(self):
        return None  # every probability depends on every score

    def forward(self, x, train=False, rng=None):
        self.output_shape(x.shape[1:])
        y = softmax(x, axis=1)
        return y, y

    def backward(self, dy, cache, need_params=False):
        y = cache
        return y * (dy - (dy * y).sum(axis=1, keepdims=True)), None

    def reverse(self, signal, cache, input_shape):
        # Zeiler & Fergus start below the softmax; a network that ends in one gets its Jacobian
        # transpose, y * (R - sum_k R_k y_k), so that a class score still means the same thing
        y = cache
        return y * (signal - (signal * y).sum(axis=1, keepdims=True))

    def torch_module(self, nn):
        return nn.Softmax(dim=1)

    def keras_layers(self, keras, input_shape):
        return [keras.layers.Softmax()], {}
