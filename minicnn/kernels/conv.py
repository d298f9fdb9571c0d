"""Convolution lowered to matrix products: the choice of lowering, and the im2col tiles.

    y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x[n, c, i*s - p + u, j*s - p + v]

Two lowerings compute it, chosen here and nowhere else (``choose_lowering``):

- im2col (both devices): the (C*kh*kw, pixels) column matrix of input patches, one GEMM with
  w.reshape(O, C*kh*kw), and col2im for the transposed convolution:

      dx[n] = col2im(w2.T @ dy[n])     dw2 = sum_n dy[n] @ cols[n].T     db = sum of dy over n, i, j

  It runs image by image in tiles of whole output rows, so each GEMM reads and writes NCHW memory
  directly (no transposes) and the column tile is still in cache when the GEMM reads it.
- Winograd F(2x2, 3x3) (CPU, minicnn/kernels/winograd.py) for 3x3 stride-1 convolutions with at
  least WINOGRAD_MIN_CHANNELS channels in and out: the same result to float rounding with 2.25x fewer
  multiply-adds. Backward applies it to dy with the transposed kernel, which is what the transposed
  convolution is: dx = conv(dy, w rotated 180 degrees with channels swapped, padding 2 - p).

The weight gradient always uses im2col.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError
from minicnn.geometry import output_size
from minicnn.kernels import winograd
from minicnn.kernels.im2col import col2im, im2col

ALGORITHMS = ("auto", "im2col", "winograd")

# Columns are built in tiles of at most this many elements (16 MB in float32 on the CPU) so that
# memory stays bounded on large inputs and each tile is still in cache when the GEMM reads it. The GPU
# has memory to spare and wants few, large GEMMs.
COLUMN_TILE_ELEMENTS = {"cpu": 1 << 22, "gpu": 1 << 27}

# Winograd's transforms cost memory traffic proportional to C + O per pixel and save GEMM work
# proportional to C * O: below this many channels on either side (VGG's first layer has 3 inputs)
# plain im2col is faster.
WINOGRAD_MIN_CHANNELS = 16


class ConvCache(NamedTuple):
    x: object  # the input (N, C, H, W), kept for the weight gradient
    ho: int
    wo: int


def choose_lowering(x, w, stride: int, padding: int, algorithm: str) -> str:
    """ "winograd" or "im2col" for input x and kernel w (O, C, kh, kw) under ``algorithm``.

    "auto" takes Winograd on the CPU for 3x3 stride-1 kernels with padding <= 2 and at least
    WINOGRAD_MIN_CHANNELS channels on both sides; "winograd" insists (a clear error where it cannot).
    """
    if algorithm not in ALGORITHMS:
        raise MinicnnError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    o, c, kh, kw = w.shape
    fits = get_xp(x) is np and (kh, kw) == (3, 3) and stride == 1 and 0 <= padding <= 2
    if algorithm == "winograd" and not fits:
        raise MinicnnError(
            f"Winograd needs a 3x3 kernel, stride 1, padding <= 2 and a CPU array; got {kh}x{kw}, "
            f"stride {stride}, padding {padding}"
        )
    if algorithm == "auto":
        return "winograd" if fits and min(o, c) >= WINOGRAD_MIN_CHANNELS else "im2col"
    return algorithm


def _matmul_into(a, b, out):
    """out[...] = a @ b; NumPy writes straight into a strided view, CuPy via a temporary."""
    if get_xp(out) is np:
        np.matmul(a, b, out=out)
    else:
        out[...] = a @ b


def _column_tile(x, wo: int, p: int, ckk: int) -> int:
    """Columns per im2col tile: whole output rows (wo each), as many as fit in the device's budget, at
    least one row and at most one image (p = Ho * Wo)."""
    rows = COLUMN_TILE_ELEMENTS["cpu" if get_xp(x) is np else "gpu"] // (ckk * wo)
    return min(p, max(1, rows) * wo)


def _row_tiles(n: int, p: int, tile: int):
    """Yield (image, q0, q1): output pixels [q0, q1) of one image at a time, ``tile`` at a time.

    Tiles never cross images, so each GEMM writes straight into y[image] (O, Ho*Wo) in NCHW order
    and no transposition is needed afterwards.
    """
    for image in range(n):
        for q0 in range(0, p, tile):
            yield image, q0, min(q0 + tile, p)


def conv2d_forward(x, w, b, stride: int, padding: int, algorithm: str = "auto"):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) -> (y (N, O, Ho, Wo), ConvCache).

    Ho = output_size(H, kh, stride, padding), likewise Wo. algorithm: one of ALGORITHMS.
    """
    xp = get_xp(x)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho, wo = output_size(h, kh, stride, padding), output_size(wd, kw, stride, padding)
    if choose_lowering(x, w, stride, padding, algorithm) == "winograd":
        u = winograd.transform_kernel(w)
        return winograd.winograd_conv(x, u, b, padding), ConvCache(x, ho, wo)
    p, ckk = ho * wo, c * kh * kw
    w2, bias = w.reshape(o, ckk), b[:, None]
    y = xp.empty((n, o, p), dtype=x.dtype)
    tile = _column_tile(x, wo, p, ckk)
    cols = xp.empty((ckk, tile), dtype=x.dtype)
    for image, q0, q1 in _row_tiles(n, p, tile):
        part, out = cols[:, : q1 - q0], y[image, :, q0:q1]
        im2col(x, kh, kw, stride, padding, ho, wo, image * p + q0, image * p + q1, part)
        _matmul_into(w2, part, out)
        out += bias  # while the tile is still in cache
    return y.reshape(n, o, ho, wo), ConvCache(x, ho, wo)


def conv2d_backward(
    dy, cache: ConvCache, w, stride: int, padding: int, need_params: bool = False, algorithm: str = "auto"
):
    """dy (N, O, Ho, Wo) -> (dx (N, C, H, W), dw (O, C, kh, kw) or None, db (O,) or None)."""
    xp = get_xp(dy)
    x = cache.x
    # The same choice as forward (made with the layer's own padding p): 0 <= p <= 2 exactly when
    # 0 <= 2 - p <= 2, and min(O, C) is symmetric, so a layer takes one lowering both ways.
    if not need_params and choose_lowering(dy, w, stride, padding, algorithm) == "winograd":
        u = winograd.transform_kernel(w, transposed=True)
        return winograd.winograd_conv(dy, u, None, 2 - padding), None, None
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    p, ckk = cache.ho * cache.wo, c * kh * kw
    w2 = w.reshape(o, ckk)
    dy3 = xp.ascontiguousarray(dy).reshape(n, o, p)
    dx = xp.zeros(x.shape, dtype=dy.dtype)
    dw2 = xp.zeros((o, ckk), dtype=dy.dtype) if need_params else None
    tile = _column_tile(dy, cache.wo, p, ckk)
    dcols = xp.empty((ckk, tile), dtype=dy.dtype)
    cols = xp.empty((ckk, tile), dtype=dy.dtype) if need_params else None
    for image, q0, q1 in _row_tiles(n, p, tile):
        m, g0, g1 = q1 - q0, image * p + q0, image * p + q1
        signal = dy3[image, :, q0:q1]
        _matmul_into(w2.T, signal, dcols[:, :m])
        col2im(dcols[:, :m], kh, kw, stride, padding, cache.ho, cache.wo, g0, g1, dx)
        if need_params:
            im2col(x, kh, kw, stride, padding, cache.ho, cache.wo, g0, g1, cols[:, :m])
            dw2 += signal @ cols[:, :m].T
    if not need_params:
        return dx, None, None
    return dx, dw2.reshape(w.shape), dy3.sum(axis=(0, 2))
