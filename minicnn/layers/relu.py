"""ReLU and the three backward rules that separate gradient, DeconvNet and guided backpropagation.

Everywhere else in the network the three visualisation methods compute the same thing: convolution
backward is the transposed convolution (DeconvNet's "filtering") and max-pool backward routes through
the switches (DeconvNet's "unpooling"). They differ only here (Simonyan et al. 2013, sec. 4;
Springenberg et al. 2014, fig. 1):

    gradient   dx = dy * [x > 0]              mask from the forward input
    deconvnet  dx = max(dy, 0)                ReLU applied to the backward signal, forward ignored
    guided     dx = max(dy, 0) * [x > 0]      both

NOTE: the derivative at x == 0 is taken as 0, as PyTorch does ([x > 0], not [x >= 0]).
"""

from __future__ import annotations

from minicnn.errors import MinicnnError
from minicnn.kernels import relu as kernels
from minicnn.layers.base import Layer

MODES = ("gradient", "deconvnet", "guided")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise MinicnnError(f"unknown backward mode {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def relu_backward(dy, y, mode: str = "gradient"):
    """dy, y (the forward output; y > 0 exactly where x > 0), same shapes -> dx by ``mode``'s rule."""
    return kernels.relu_backward(dy, y, check_mode(mode))


class ReLU(Layer):
    """Rectified linear unit, elementwise; any input shape."""

    kind = "ReLU"
    is_rectifier = True

    def forward(self, x, train=False, rng=None):
        y = kernels.relu_forward(x)  # x (any shape) -> max(x, 0), same shape and dtype
        return y, y  # the output is the cache: its sign pattern is the forward mask

    def backward(self, dy, cache, mode="gradient", need_params=False):
        return relu_backward(dy, cache, mode), None
