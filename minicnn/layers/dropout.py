"""Dropout (Srivastava et al. 2014), inverted: scaled by 1 / (1 - p) in training, identity at inference.

Visualisation always runs in inference mode, where this layer does nothing.
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp
from minicnn.layers.base import Layer


class Dropout(Layer):
    """Any shape -> same shape."""

    kind = "Dropout"
    is_identity_at_inference = True
    equivalence_row = ("identity (test)", "identity", "identity")

    def __init__(self, p=0.5, name=None):
        super().__init__(name)
        self.p = float(p)
        if not 0.0 <= self.p < 1.0:
            raise self.error(f"drop probability must be in [0, 1), got {p}")

    def config(self):
        return {"p": self.p}

    def forward(self, x, train=False, rng=None):
        if not train or self.p == 0.0:
            return x, None
        xp = get_xp(x)
        rng = rng if rng is not None else np.random.default_rng()
        keep = rng.random(x.shape, dtype=np.float32) >= self.p
        scale = xp.asarray(keep, dtype=x.dtype) / x.dtype.type(1.0 - self.p)
        return x * scale, scale

    def backward(self, dy, cache, need_params=False):
        return (dy if cache is None else dy * cache), None

    def reverse(self, signal, cache, input_shape):
        return signal  # the reverse network runs at inference, where dropout is the identity

    def torch_module(self, nn):
        return nn.Dropout(self.p)  # the mirrors run in eval mode, where this is the identity

    def keras_layers(self, keras, input_shape):
        return [], {}  # nothing at inference
