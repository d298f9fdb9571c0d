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
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.kernels import relu as kernels
from minicnn.layers.base import Layer

# The table above: rule -> (mask by the forward input, rectify the backward signal).
MASKS = {"gradient": (True, False), "deconvnet": (False, True), "guided": (True, True)}


def relu_backward(dy, y, mode: str = "gradient"):
    """dy, y (the forward output; y > 0 exactly where x > 0), same shapes -> dx by ``mode``'s rule
    (a name from minicnn.rules.MODES, checked by the caller)."""
    return kernels.relu_backward(dy, y, *MASKS[mode])


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

    def backward(self, dy, cache, mode="gradient", need_params=False):
        return relu_backward(dy, cache, mode), None

    def reverse(self, signal, cache, input_shape):
        return rectify(signal)

    def torch_module(self, nn):
        return nn.ReLU()

    def keras_layers(self, keras, input_shape):
        return [keras.layers.ReLU()], {}
