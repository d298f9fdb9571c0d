"""2-D convolution (cross-correlation, as in every framework), lowered to GEMM.

    y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x[n, c, i*s - p + u, j*s - p + v]

Backward is the transposed convolution, the same in all three visualisation modes (Zeiler & Fergus
2013 call it "filtering with the transposed filters"):

    dx[n] = col2im(w2.T @ dy[n])     dw2 = sum_n dy[n] @ cols[n].T     db = sum of dy over n, i, j

with w2 = w.reshape(O, C*kh*kw), dy[n] as (O, Ho*Wo) and cols[n] = im2col(x[n]) (C*kh*kw, Ho*Wo).
Everything runs image by image in tiles of whole output rows, so each GEMM reads and writes NCHW
memory directly (no transposes) and the column tile is still in cache when the GEMM reads it.

On the CPU, 3x3 stride-1 convolutions with at least WINOGRAD_MIN_CHANNELS channels in and out (all of
VGG16's but block1_conv1) take the Winograd F(2x2, 3x3) lowering instead (minicnn/kernels/winograd.py):
the same result to float rounding, with 2.25x fewer multiply-adds.
Backward then applies the same algorithm to dy with the transposed kernel, which is what the
transposed convolution is: dx = conv(dy, w rotated 180 degrees with channels swapped, padding 2 - p).
``algorithm="im2col"`` forces the plain lowering; the weight gradient always uses it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError
from minicnn.kernels import winograd
from minicnn.kernels.im2col import col2im, im2col
from minicnn.layers.base import Layer

# Columns are built in tiles of at most this many elements (16 MB in float32 on the CPU) so that
# memory stays bounded on large inputs and each tile is still in cache when the GEMM reads it. The GPU
# has memory to spare and wants few, large GEMMs.
TILE_ELEMENTS = {"cpu": 1 << 22, "gpu": 1 << 27}


ALGORITHMS = ("auto", "im2col", "winograd")

# Winograd's transforms cost memory traffic proportional to C + O per pixel and save GEMM work
# proportional to C * O: below this many channels on either side (VGG's first layer has 3 inputs)
# plain im2col is faster.
WINOGRAD_MIN_CHANNELS = 16


def _winograd_applies(xp, w, stride: int, padding: int, algorithm: str) -> bool:
    """Whether a convolution with kernel w (O, C, kh, kw) takes the Winograd path."""
    o, c, kh, kw = w.shape
    fits = xp is np and (kh, kw) == (3, 3) and stride == 1 and 0 <= padding <= 2
    if algorithm == "winograd" and not fits:
        raise MinicnnError(
            f"Winograd needs a 3x3 kernel, stride 1, padding <= 2 and a CPU array; got {kh}x{kw}, "
            f"stride {stride}, padding {padding}"
        )
    if algorithm == "auto":
        return fits and min(o, c) >= WINOGRAD_MIN_CHANNELS
    return algorithm == "winograd"


class ConvCache(NamedTuple):
    x: object  # the input (N, C, H, W), kept for the weight gradient
    ho: int
    wo: int


def _matmul_into(xp, a, b, out):
    """out[...] = a @ b; NumPy writes straight into a strided view, CuPy via a temporary."""
    if xp is np:
        np.matmul(a, b, out=out)
    else:
        out[...] = a @ b


def _tile_width(xp, wo: int, p: int, ckk: int) -> int:
    """Columns per tile: whole output rows (wo each), as many as fit in the device's budget, at
    least one row and at most one image (p = Ho * Wo)."""
    rows = TILE_ELEMENTS["cpu" if xp is np else "gpu"] // (ckk * wo)
    return min(p, max(1, rows) * wo)


def _tiles(n: int, p: int, tile: int):
    """Yield (image, q0, q1): output pixels [q0, q1) of one image at a time, ``tile`` at a time.

    Tiles never cross images, so each GEMM writes straight into y[image] (O, Ho*Wo) in NCHW order
    and no transposition is needed afterwards.
    """
    for image in range(n):
        for q0 in range(0, p, tile):
            yield image, q0, min(q0 + tile, p)


def conv2d_forward(x, w, b, stride: int, padding: int, algorithm: str = "auto"):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) -> (y (N, O, Ho, Wo), cache).

    Ho = (H + 2*padding - kh) // stride + 1, likewise Wo. algorithm: one of ALGORITHMS.
    """
    xp = get_xp(x)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    if _winograd_applies(xp, w, stride, padding, algorithm):
        u = winograd.transform_kernel(w)
        return winograd.winograd_conv(x, u, b, padding), ConvCache(x, ho, wo)
    p, ckk = ho * wo, c * kh * kw
    w2, bias = w.reshape(o, ckk), b[:, None]
    y = xp.empty((n, o, p), dtype=x.dtype)
    tile = _tile_width(xp, wo, p, ckk)
    cols = xp.empty((ckk, tile), dtype=x.dtype)
    for image, q0, q1 in _tiles(n, p, tile):
        part, out = cols[:, : q1 - q0], y[image, :, q0:q1]
        im2col(x, kh, kw, stride, padding, ho, wo, image * p + q0, image * p + q1, part)
        _matmul_into(xp, w2, part, out)
        out += bias  # while the tile is still in cache
    return y.reshape(n, o, ho, wo), ConvCache(x, ho, wo)


def conv2d_backward(
    dy, cache: ConvCache, w, stride: int, padding: int, need_params: bool = False, algorithm: str = "auto"
):
    """dy (N, O, Ho, Wo) -> (dx (N, C, H, W), dw (O, C, kh, kw) or None, db (O,) or None)."""
    xp = get_xp(dy)
    x = cache.x
    # Same test as forward: 0 <= padding <= 2 exactly when 0 <= 2 - padding <= 2, and min(O, C) is
    # symmetric, so a layer takes one lowering both ways.
    if not need_params and _winograd_applies(xp, w, stride, padding, algorithm):
        u = winograd.transform_kernel(w, transposed=True)
        return winograd.winograd_conv(dy, u, None, 2 - padding), None, None
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    p, ckk = cache.ho * cache.wo, c * kh * kw
    w2 = w.reshape(o, ckk)
    dy3 = xp.ascontiguousarray(dy).reshape(n, o, p)
    dx = xp.zeros(x.shape, dtype=dy.dtype)
    dw2 = xp.zeros((o, ckk), dtype=dy.dtype) if need_params else None
    tile = _tile_width(xp, cache.wo, p, ckk)
    dcols = xp.empty((ckk, tile), dtype=dy.dtype)
    cols = xp.empty((ckk, tile), dtype=dy.dtype) if need_params else None
    for image, q0, q1 in _tiles(n, p, tile):
        m, g0, g1 = q1 - q0, image * p + q0, image * p + q1
        signal = dy3[image, :, q0:q1]
        _matmul_into(xp, w2.T, signal, dcols[:, :m])
        col2im(dcols[:, :m], kh, kw, stride, padding, cache.ho, cache.wo, g0, g1, dx)
        if need_params:
            im2col(x, kh, kw, stride, padding, cache.ho, cache.wo, g0, g1, cols[:, :m])
            dw2 += signal @ cols[:, :m].T
    if not need_params:
        return dx, None, None
    return dx, dw2.reshape(w.shape), dy3.sum(axis=(0, 2))


class Conv2D(Layer):
    """Convolution with weight (O, C, kh, kw) and bias (O,); input (N, C, H, W) -> (N, O, Ho, Wo)."""

    kind = "Conv2D"
    has_params = True

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, padding=0, name=None, algorithm="auto"
    ):
        super().__init__(name)
        if algorithm not in ALGORITHMS:
            raise self.error(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        # How the convolution is lowered to GEMM (see the module docstring). Not part of config():
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

    def init_params(self, rng, dtype=np.float32):
        """He initialisation (He et al. 2015): N(0, 2 / fan_in), zero bias."""
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = (rng.standard_normal(shape, np.float32) * np.sqrt(2.0 / fan_in)).astype(dtype)
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
            (hp - kh) // self.stride + 1,
            (wp - kw) // self.stride + 1,
        )

    def forward(self, x, train=False, rng=None):
        self.output_shape(x.shape[1:])
        return conv2d_forward(x, self.weight, self.bias, self.stride, self.padding, self.algorithm)

    def backward(self, dy, cache, mode="gradient", need_params=False):
        dx, dw, db = conv2d_backward(
            dy, cache, self.weight, self.stride, self.padding, need_params, self.algorithm
        )
        return dx, ({"weight": dw, "bias": db} if need_params else None)
