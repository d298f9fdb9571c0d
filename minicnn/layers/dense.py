"""Fully connected layer: y = x @ W.T + b with W (out, in), as in PyTorch.

Backward: dx = dy @ W, dW = dy.T @ x, db = sum of dy over the batch.

The forward product is computed as (W @ x.T).T: the same product (rounded in another order), which
OpenBLAS runs faster at batch 8 and more on VGG16's fc1 shape (it packs the operands of the two
orders differently; an observation, not a derivation); backward's dy @ W is already the faster of
its two orders (benchmarks/RESULTS.md, "Figures moved out of minicnn's docstrings"). The products
go through minicnn.kernels.gemm.product (BLAS on one thread per part of the product), which keeps
BLAS's own threads asleep during a pass; for one image, the input gradient reads only the rows of W
whose dy is nonzero (minicnn/kernels/dense.py).
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp, to_numpy
from minicnn.kernels import dense as dense_kernels
from minicnn.kernels import gemm
from minicnn.layers.base import Layer, he_normal
from minicnn.layers.relevance import relevance


def dense_transposed(signal, weight):
    """DeconvNet's reverse of a dense layer y = W x + b: W^T R, signal (N, out) -> (N, in), written
    as the paper's W^T R on column vectors, (W^T @ R^T)^T (a plain product, not kernels/dense.py)."""
    return (weight.T @ signal.T).T


class Dense(Layer):
    """(N, in_features) -> (N, out_features)."""

    kind = "Dense"
    has_params = True
    is_linear = True
    reads_rule = True  # LRP rules (minicnn/layers/relevance.py); the named rules all take the gradient
    equivalence_row = ("W X + b", "W^T R", "W^T dX")

    def __init__(self, in_features, out_features, name=None):
        super().__init__(name)
        self.in_features, self.out_features = int(in_features), int(out_features)
        if min(self.in_features, self.out_features) < 1:
            raise self.error("feature counts must be positive")
        self.weight = None  # (out, in)
        self.bias = None  # (out,)

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features}

    @property
    def params(self):
        return {"weight": self.weight, "bias": self.bias}

    def param_shapes(self):
        return {"weight": (self.out_features, self.in_features), "bias": (self.out_features,)}

    def window(self):
        return None  # every output reads every input

    def init_params(self, rng, dtype=np.float32):
        """He initialisation: N(0, 2 / in_features), zero bias."""
        shape = self.param_shapes()["weight"]
        self.weight = he_normal(rng, shape, self.in_features, dtype)
        self.bias = np.zeros(self.out_features, dtype=dtype)

    def output_shape(self, shape):
        self.check_rank(shape, 1, "(N, features); add a Flatten layer before it")
        if shape[0] != self.in_features:
            raise self.error(f"expected {self.in_features} input features, got {shape[0]}")
        return (self.out_features,)

    def forward(self, x, train=False, rng=None):
        self.output_shape(x.shape[1:])
        y = gemm.product(self.weight, x.T).T + self.bias  # (N, out), laid out column-major: made row-major
        return get_xp(y).ascontiguousarray(y), x

    def input_gradient_cache(self, cache):
        return None  # the cache is the input, read by the weight gradient alone

    def backward(self, dy, cache, mode="gradient", need_params=False):
        if not isinstance(mode, str):  # an LRP rule: relevance, no parameter gradients
            return self.relevance(dy, mode), None
        dx = dense_kernels.input_gradient(dy, self.weight)  # rows of W that dy selects: kernels/dense.py
        if not need_params:
            return dx, None
        return dx, {"weight": gemm.product(dy.T, cache), "bias": dy.sum(axis=0)}

    def relevance(self, r, at):
        """R_in (N, in) from the relevance r (N, out) under ``at`` (a rules.LayerRule)."""

        def forward(x, w, b):
            return x @ w.T if b is None else x @ w.T + b

        def transpose(g, w):
            return dense_kernels.input_gradient(g, w) if w is self.weight else g @ w

        return relevance(at.rule, at.input, at.output, r, forward, transpose, self.weight, self.bias)

    def reverse(self, signal, cache, input_shape):
        return dense_transposed(signal, self.weight)

    def torch_module(self, nn):
        return nn.Linear(self.in_features, self.out_features)

    def keras_layers(self, keras, input_shape):
        dense = keras.layers.Dense(self.out_features)  # kernel (in, out): W transposed
        return [dense], {dense: [to_numpy(self.weight).T, to_numpy(self.bias)]}
