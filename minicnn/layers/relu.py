"""ReLU and the three backward rules that separate gradient, DeconvNet and guided backpropagation.

Everywhere else in the network the three visualisation methods compute the same thing: convolution
backward is the transposed convolution (DeconvNet's "filtering") and max-pool backward routes through
the switches (DeconvNet's "unpooling"). They differ only here (Simonyan et al. 2013, sec. 4;
Springenberg et al. 2014, fig. 1), so the ReLU is the layer that reads the rule (``reads_rule``;
the rules are named in minicnn/rules.py):

    gradient   dx = dy * [x > 0]              mask from the forward input
    deconvnet  dx = max(dy, 0)                ReLU applied to the backward signal, forward ignored
    guided     dx = max(dy, 0) * [x > 0]      both

NOTE: the derivative at x == 0 is taken as 0, as PyTorch does ([x > 0], not [x >= 0]).

Two rule values reach it too (minicnn/rules.py): under every LRP rule the ReLU passes relevance
unchanged (Zennit's Pass; a ReLU is not a layer among whose inputs relevance is split), and
DeepLIFT's Rescale rule (Shrikumar et al. 2017, sec. 3.3) multiplies by the slope of the secant
between the reference's and the input's forward passes:

    deeplift   dx = dy * (y - y0) / (x - x0)      where x != x0
               dx = dy * [x > 0]                  where x == x0 (the gradient: the secant's limit)
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.kernels import relu as kernels
from minicnn.layers.base import Layer
from minicnn.rules import DeepLift

# The table above: rule -> (mask by the forward input, rectify the backward signal).
MASKS = {"gradient": (True, False), "deconvnet": (False, True), "guided": (True, True)}


def relu_backward(dy, y, mode: str = "gradient"):
    """dy, y (the forward output, y > 0 exactly where x > 0, or its mask y > 0 as bool or as
    kernels.SignBits), same shapes -> dx by ``mode``'s rule (a name from minicnn.rules.MODES,
    checked by the caller)."""
    if isinstance(y, kernels.SignBits):
        y = kernels.unpack_signs(y)  # one byte per value, for this layer's backward only
    return kernels.relu_backward(dy, y, *MASKS[mode])


def rescale(dy, x, y, x0, y0):
    """DeepLIFT's Rescale multiplier times dy: dy * (y - y0) / (x - x0), dy * [x > 0] where x == x0;
    all arrays of one shape (x0, y0: the reference pass's input and output of this ReLU)."""
    xp = get_xp(dy)
    delta = x - x0
    moved = delta != 0
    slope = xp.where(moved, y - y0, x > 0) / xp.where(moved, delta, 1)
    return dy * slope.astype(dy.dtype, copy=False)


def rectify(signal):
    """DeconvNet's rectification (Zeiler & Fergus 2013, sec. 2.1): max(R, 0) on the reverse signal,
    any shape. The forward pass's own mask is NOT used: this is where DeconvNet and gradient differ."""
    return get_xp(signal).maximum(signal, 0)


class ReLU(Layer):
    """Rectified linear unit, elementwise; any input shape."""

    kind = "ReLU"
    is_rectifier = True
    reads_rule = True
    equivalence_row = ("max(X, 0)", "R [R > 0]", "dX [X > 0]")

    def forward(self, x, train=False, rng=None):
        y = kernels.relu_forward(x)  # x (any shape) -> max(x, 0), same shape and dtype
        return y, y  # the output is the cache: its sign pattern is the forward mask

    def input_gradient_cache(self, cache):
        # The named rules read only the sign pattern of y: one bit per value instead of 32 or 64,
        # unpacked to bytes for the layer's backward alone (the masks of every ReLU are held at once).
        return kernels.pack_signs(cache)

    def forward_rectified(self, x):
        # x is already max(v, 0), computed as relu_forward computes it: max(x, 0) is x itself
        return x, x

    def backward(self, dy, cache, mode="gradient", need_params=False):
        if isinstance(mode, str):
            return relu_backward(dy, cache, mode), None
        if isinstance(mode.rule, DeepLift):
            (x0, y0) = mode.reference
            return rescale(dy, mode.input, mode.output, x0, y0), None
        return dy, None  # LRP: relevance passes unchanged

    def reverse(self, signal, cache, input_shape):
        return rectify(signal)

    def torch_module(self, nn):
        return nn.ReLU()

    def keras_layers(self, keras, input_shape):
        return [keras.layers.ReLU()], {}
