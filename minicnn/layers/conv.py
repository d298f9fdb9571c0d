"""2-D convolution (cross-correlation, as in every framework), lowered to GEMM through im2col.

    y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x[n, c, i*s - p + u, j*s - p + v]

Backward is the transposed convolution, the same in all three visualisation modes (Zeiler & Fergus
2013 call it "filtering with the transposed filters"):

    dx = col2im(w2.T @ dy2)        dw2 = dy2 @ cols.T        db = sum of dy over n, i, j

with w2 = w.reshape(O, C*kh*kw), dy2 = dy as (O, N*Ho*Wo) and cols = im2col(x).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.backend import get_xp
from minicnn.kernels.im2col import col2im, im2col
from minicnn.layers.base import Layer

# Columns are built in tiles of at most this many elements (16 MB in float32 on the CPU) so that
# memory stays bounded on large inputs and each tile is still in cache when the GEMM reads it. The GPU
# has memory to spare and wants few, large GEMMs.
TILE_ELEMENTS = {"cpu": 1 << 22, "gpu": 1 << 27}


class ConvCache(NamedTuple):
    x: object  # the input (N, C, H, W), kept for the weight gradient
    ho: int
    wo: int


def _tile(xp, ckk: int, total: int) -> int:
    budget = TILE_ELEMENTS["cpu" if xp is np else "gpu"]
    return max(1, min(total, budget // ckk))


def _matmul_into(xp, a, b, out):
    """out[...] = a @ b; NumPy writes straight into a strided view, CuPy via a temporary."""
    if xp is np:
        np.matmul(a, b, out=out)
    else:
        out[...] = a @ b


def conv2d_forward(x, w, b, stride: int, padding: int):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) -> (y (N, O, Ho, Wo), cache).

    Ho = (H + 2*padding - kh) // stride + 1, likewise Wo.
    """
    xp = get_xp(x)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    q_total, ckk = n * ho * wo, c * kh * kw
    w2 = w.reshape(o, ckk)
    y2 = xp.empty((o, q_total), dtype=x.dtype)
    tile = _tile(xp, ckk, q_total)
    cols = xp.empty((ckk, tile), dtype=x.dtype)
    for q0 in range(0, q_total, tile):
        q1 = min(q0 + tile, q_total)
        part = cols[:, : q1 - q0]
        im2col(x, kh, kw, stride, padding, ho, wo, q0, q1, part)
        _matmul_into(xp, w2, part, y2[:, q0:q1])
    y2 += b[:, None]
    # (O, N*Ho*Wo) -> (N, O, Ho, Wo); a free view when N == 1
    y = xp.ascontiguousarray(y2.reshape(o, n, ho, wo).transpose(1, 0, 2, 3))
    return y, ConvCache(x, ho, wo)


def conv2d_backward(dy, cache: ConvCache, w, stride: int, padding: int, need_params: bool = False):
    """dy (N, O, Ho, Wo) -> (dx (N, C, H, W), dw (O, C, kh, kw) or None, db (O,) or None)."""
    xp = get_xp(dy)
    x = cache.x
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    q_total, ckk = n * cache.ho * cache.wo, c * kh * kw
    w2 = w.reshape(o, ckk)
    dy2 = xp.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(o, q_total)
    dx = xp.zeros(x.shape, dtype=dy.dtype)
    dw2 = xp.zeros((o, ckk), dtype=dy.dtype) if need_params else None
    tile = _tile(xp, ckk, q_total)
    dcols = xp.empty((ckk, tile), dtype=dy.dtype)
    cols = xp.empty((ckk, tile), dtype=dy.dtype) if need_params else None
    for q0 in range(0, q_total, tile):
        q1 = min(q0 + tile, q_total)
        m = q1 - q0
        _matmul_into(xp, w2.T, dy2[:, q0:q1], dcols[:, :m])
        col2im(dcols[:, :m], kh, kw, stride, padding, cache.ho, cache.wo, q0, q1, dx)
        if need_params:
            im2col(x, kh, kw, stride, padding, cache.ho, cache.wo, q0, q1, cols[:, :m])
            dw2 += dy2[:, q0:q1] @ cols[:, :m].T
    if not need_params:
        return dx, None, None
    return dx, dw2.reshape(w.shape), dy2.sum(axis=1)


class Conv2D(Layer):
    """Convolution with weight (O, C, kh, kw) and bias (O,); input (N, C, H, W) -> (N, O, Ho, Wo)."""

    kind = "Conv2D"
    has_params = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, name=None):
        super().__init__(name)
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
        return conv2d_forward(x, self.weight, self.bias, self.stride, self.padding)

    def backward(self, dy, cache, mode="gradient", need_params=False):
        dx, dw, db = conv2d_backward(dy, cache, self.weight, self.stride, self.padding, need_params)
        return dx, ({"weight": dw, "bias": db} if need_params else None)
