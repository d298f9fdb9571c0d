"""2-D convolution (cross-correlation, as in every framework).

    y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x[n, c, i*s - p + u, j*s - p + v]

Backward is the transposed convolution, the same in all three visualisation modes (Zeiler & Fergus
2013 call it "filtering with the transposed filters"):

    dx = conv^T(dy, w)     dw[o, c, u, v] = sum_{n, i, j} dy[n, o, i, j] x[n, c, i*s - p + u, j*s - p + v]
    db[o] = sum_{n, i, j} dy[n, o, i, j]

How the sums are lowered to matrix products (im2col, plain products on the input's memory for 1x1
kernels, or Winograd F(4x4, 3x3) / F(2x2, 3x3) for 3x3 stride-1 layers on the CPU) is chosen in
minicnn/kernels/conv.py; ``algorithm`` lets a layer insist on
one. The layer keeps Winograd's transformed kernels between calls (``transforms``, rebuilt whenever the
weights' content changes, however it was changed: minicnn/kernels/kernel_cache.py).
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp, to_numpy
from minicnn.geometry import Window, output_size
from minicnn.kernels.conv import (  # noqa: F401 (conv2d_* re-exported: the layer's pure functions)
    ALGORITHMS,
    conv2d_backward,
    conv2d_forward,
    without_input,
)
from minicnn.kernels.kernel_cache import KernelTransforms
from minicnn.layers.base import Layer, he_normal
from minicnn.layers.relevance import relevance


def transposed_filters(weight):
    """weight (O, C, kh, kw) -> (C, O, kh, kw): every filter flipped vertically and horizontally,
    input and output channels swapped (Zeiler & Fergus's "transposed versions of the same filters")."""
    return get_xp(weight).ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


def filter_transposed(signal, weight, stride: int, padding: int, input_shape):
    """DeconvNet's filtering with the transposed filters (Zeiler & Fergus 2013, sec. 2.1):
    signal (N, O, Ho, Wo) -> (N, C, H, W) = input_shape.

    The forward layer read input (y * s - p + u, x * s - p + v) with weight (u, v); the reverse
    stage is a forward convolution of the signal, spread back to the forward grid (s - 1 zeros
    between signals) and padded by k - 1 on every side, with the transposed filters. That "full"
    convolution covers the padded input (H + 2p, W + 2p); the forward padding is then cut off.
    Rows and columns the forward windows never reached (when (H + 2p - kh) % s != 0) get zeros.
    """
    xp = get_xp(signal)
    n, o, ho, wo = signal.shape
    _, c, h, w = input_shape
    kh, kw = weight.shape[2:]
    hp, wp = h + 2 * padding, w + 2 * padding
    # the signal on the padded input's grid, plus k - 1 zeros on each side for the full convolution
    spread = xp.zeros((n, o, hp + kh - 1, wp + kw - 1), dtype=signal.dtype)
    rows = slice(kh - 1, kh - 1 + (ho - 1) * stride + 1, stride)
    cols = slice(kw - 1, kw - 1 + (wo - 1) * stride + 1, stride)
    spread[:, :, rows, cols] = signal
    bias = xp.zeros(c, dtype=signal.dtype)
    # im2col's forward convolution: never the Winograd transposed kernel or col2im of the gradient
    full, _ = conv2d_forward(spread, transposed_filters(weight), bias, 1, 0, algorithm="im2col")
    return xp.ascontiguousarray(full[:, :, padding : padding + h, padding : padding + w])


class Conv2D(Layer):
    """Convolution with weight (O, C, kh, kw) and bias (O,); input (N, C, H, W) -> (N, O, Ho, Wo)."""

    kind = "Conv2D"
    has_params = True
    is_convolution = True
    fuses_rectifier = True  # max(y, 0) in the epilogue that adds the bias (minicnn/kernels/conv.py)
    reads_rule = True  # LRP rules (minicnn/layers/relevance.py); the named rules all take the gradient
    equivalence_row = ("X * K + b", "R * K^T", "dX * K^T")  # K^T: the transposed (flipped) filters

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, padding=0, name=None, algorithm="auto"
    ):
        super().__init__(name)
        if algorithm not in ALGORITHMS:
            raise self.error(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        # How the convolution is lowered to GEMM (see minicnn/kernels/conv.py). Not part of config():
        # it changes the speed and the float rounding, not the function computed.
        self.algorithm = algorithm
        ks = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = (int(ks[0]), int(ks[1]))
        self.stride, self.padding = int(stride), int(padding)
        if min(self.in_channels, self.out_channels, *self.kernel_size, self.stride) < 1:
            raise self.error("channels, kernel size and stride must be positive")
        if self.padding < 0:
            raise self.error("padding must be >= 0")
        self.weight = None  # (O, C, kh, kw), set by init_params or a loader
        self.bias = None  # (O,)
        # Winograd's transformed kernels, kept between calls and checked against the weights' content
        self.transforms = KernelTransforms()

    def config(self):
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": self.stride,
            "padding": self.padding,
        }

    @property
    def params(self):
        return {"weight": self.weight, "bias": self.bias}

    def param_shapes(self):
        return {
            "weight": (self.out_channels, self.in_channels, *self.kernel_size),
            "bias": (self.out_channels,),
        }

    def window(self):
        return Window(self.kernel_size, (self.stride, self.stride), (self.padding, self.padding))

    def init_params(self, rng, dtype=np.float32):
        """He initialisation (He et al. 2015): N(0, 2 / fan_in), zero bias."""
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        shape = self.param_shapes()["weight"]
        self.weight = he_normal(rng, shape, fan_in, dtype)
        self.bias = np.zeros(self.out_channels, dtype=dtype)

    def output_shape(self, shape):
        self.check_rank(shape, 3, "(N, C, H, W)")
        c, h, w = shape
        if c != self.in_channels:
            raise self.error(f"expected {self.in_channels} input channels, got {c}")
        kh, kw = self.kernel_size
        hp, wp = h + 2 * self.padding, w + 2 * self.padding
        if hp < kh or wp < kw:
            raise self.error(f"input {h}x{w} (padded {hp}x{wp}) is smaller than the {kh}x{kw} kernel")
        return (
            self.out_channels,
            output_size(h, kh, self.stride, self.padding),
            output_size(w, kw, self.stride, self.padding),
        )

    def forward(self, x, train=False, rng=None, rectify=False):
        self.output_shape(x.shape[1:])
        return conv2d_forward(
            x, self.weight, self.bias, self.stride, self.padding, self.algorithm, self.transforms, rectify
        )

    def forward_padded(self, x):
        # The region already holds the zero padding: convolve with padding 0, same lowering rule.
        return conv2d_forward(x, self.weight, self.bias, self.stride, 0, self.algorithm, self.transforms)[0]

    def input_gradient_cache(self, cache):
        return without_input(cache)  # dx reads the input's shape, not its values

    def backward(self, dy, cache, mode="gradient", need_params=False):
        if not isinstance(mode, str):  # an LRP rule: relevance, no parameter gradients
            return self.relevance(dy, cache, mode), None
        dx, dw, db = conv2d_backward(
            dy, cache, self.weight, self.stride, self.padding, need_params, self.algorithm, self.transforms
        )
        return dx, ({"weight": dw, "bias": db} if need_params else None)

    def relevance(self, r, cache, at):
        """R_in (N, C, H, W) from the relevance r (N, O, Ho, Wo) of the outputs under ``at``
        (a rules.LayerRule: the LRP rule, the recorded input and output)."""

        def forward(x, w, b):
            bias = b if b is not None else get_xp(x).zeros(self.out_channels, dtype=x.dtype)
            return conv2d_forward(x, w, bias, self.stride, self.padding, self.algorithm)[0]

        def transpose(g, w):
            # the layer's own weights keep their cached transforms; modified weights are used once
            transforms = self.transforms if w is self.weight else None
            s, p = self.stride, self.padding
            return conv2d_backward(g, cache, w, s, p, False, self.algorithm, transforms)[0]

        return relevance(at.rule, at.input, at.output, r, forward, transpose, self.weight, self.bias)

    def reverse(self, signal, cache, input_shape):
        return filter_transposed(signal, self.weight, self.stride, self.padding, input_shape)

    def torch_module(self, nn):
        return nn.Conv2d(
            self.in_channels, self.out_channels, self.kernel_size, stride=self.stride, padding=self.padding
        )

    def keras_layers(self, keras, input_shape):
        # explicit zero padding, then a 'valid' convolution; OIHW -> Keras's (kh, kw, C, O)
        pad = [keras.layers.ZeroPadding2D(self.padding)] if self.padding else []
        conv = keras.layers.Conv2D(self.out_channels, self.kernel_size, strides=self.stride, padding="valid")
        return pad + [conv], {conv: [to_numpy(self.weight).transpose(2, 3, 1, 0), to_numpy(self.bias)]}
