"""Convolution lowered to matrix products: the choice of lowering, and the im2col tiles.

    y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x[n, c, i*s - p + u, j*s - p + v]

Four lowerings compute it, chosen here and nowhere else (``choose_lowering``):

- pointwise (both devices, minicnn/kernels/pointwise.py) for 1x1 kernels without padding: the input's
  own (C, H*W) memory is the column matrix (subsampled once for stride > 1), one GEMM per image.

- im2col (both devices): the (C*kh*kw, pixels) column matrix of input patches, one GEMM with
  w.reshape(O, C*kh*kw), and col2im for the transposed convolution:

      dx[n] = col2im(w2.T @ dy[n])     dw2 = sum_n dy[n] @ cols[n].T     db = sum of dy over n, i, j

  It runs image by image in tiles of whole output rows, so each GEMM reads and writes NCHW memory
  directly (no transposes) and the column tile is still in cache when the GEMM reads it.
- Winograd F(2x2, 3x3) (CPU, minicnn/kernels/winograd.py, "winograd") and F(4x4, 3x3)
  (minicnn/kernels/winograd_f4.py, "winograd4") for 3x3 stride-1 convolutions with at least
  WINOGRAD_MIN_CHANNELS channels in and out: 2.25x and 4x fewer multiply-adds; F(4x4, 3x3) carries
  ~5x F(2x2)'s float32 rounding (still within 1e-5 of the largest output on every VGG16 layer).
  Backward runs the same computation's adjoint with the same transformed kernel U, transposed
  (``winograd.run_adjoint``): in exact arithmetic the transposed convolution
  dx = conv(dy, w rotated 180 degrees with channels swapped, padding 2 - p).

The weight gradient uses im2col (1x1 layers: the pointwise products). A caller that convolves with
the same weights many times (a Conv2D layer) passes a KernelTransforms
(minicnn/kernels/kernel_cache.py) to keep Winograd's transformed kernels between calls.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError
from minicnn.geometry import output_size
from minicnn.kernels import gemm, pointwise, relu, winograd, winograd_f4
from minicnn.kernels.im2col import col2im, im2col

ALGORITHMS = ("auto", "im2col", "pointwise", "winograd", "winograd4")
_WINOGRAD = {"winograd": winograd, "winograd4": winograd_f4}  # lowering -> module with the kernels

# Columns are built in tiles of at most this many elements (16 MB in float32 on the CPU) so that
# memory stays bounded on large inputs and each tile is still in cache when the GEMM reads it. The GPU
# has memory to spare and wants few, large GEMMs.
COLUMN_TILE_ELEMENTS = {"cpu": 1 << 22, "gpu": 1 << 27}

# Winograd's transforms cost memory traffic proportional to C + O per pixel and save GEMM work
# proportional to C * O: below this many channels on either side (VGG's first layer has 3 inputs)
# plain im2col is faster.
WINOGRAD_MIN_CHANNELS = 16

# Winograd's 16 GEMMs are (O, C) @ (C, tiles): with few tiles they are too narrow for BLAS, while
# im2col's one GEMM sums 9 C terms per output. Below this many F(2x2, 3x3) tiles over the batch (a
# 7x7 map at batch 1 has 16: ResNet's last stage) im2col is faster (benchmarks/RESULTS.md, "ResNet
# convolutions"; benchmarks/roofline.py --lowerings measures it per layer).
WINOGRAD_MIN_TILES = 32

# Below this many multiply-adds per call (N * O * C * 9 * Ho * Wo) a layer takes im2col. Winograd
# is still a little faster there (a 16-channel 28x28 layer: 0.31 against 0.45 ms forward and
# backward), but its transforms are ten more Numba kernels to compile on first use (~19 s of CPU on
# a fresh install, against ~5 s for everything else a small network needs), which such a layer would
# not win back in thousands of calls. Every 3x3 layer of VGG16 and the ResNets at 224 x 224 is above
# it (the smallest, ResNet-50's 14 x 14 ones: 116 million).
WINOGRAD_MIN_WORK = 1 << 25


class ConvCache(NamedTuple):
    x: object  # the input (N, C, H, W), kept for the weight gradient (or a stand-in: without_input)
    ho: int
    wo: int


def without_input(cache: ConvCache) -> ConvCache:
    """``cache`` with its input replaced by a stand-in of the same shape, dtype and device that holds
    one value (a broadcast view of a zero): all that dx reads of the input is its shape and array
    module (``choose_lowering``, dx's allocation). The weight gradient reads the values, and
    ``conv2d_backward`` refuses it on a stand-in."""
    xp = get_xp(cache.x)
    return cache._replace(x=xp.broadcast_to(xp.zeros((), dtype=cache.x.dtype), cache.x.shape))


def holds_input(cache: ConvCache) -> bool:
    """Whether ``cache`` holds the input's values, not ``without_input``'s stand-in (a view of one
    value: every stride 0)."""
    return any(cache.x.strides)


def choose_lowering(x, w, stride: int, padding: int, algorithm: str, cached: bool = False) -> str:
    """ "winograd4", "winograd", "pointwise" or "im2col" for input x and kernel w (O, C, kh, kw) under
    ``algorithm``.

    "auto" takes the pointwise products for 1x1 kernels without padding (on either device), and
    Winograd on the CPU for 3x3 stride-1 kernels with padding <= 2, at least WINOGRAD_MIN_CHANNELS
    channels on both sides, WINOGRAD_MIN_TILES F(2x2) tiles and WINOGRAD_MIN_WORK multiply-adds:
    F(4x4, 3x3) where ``_f4_pays``, else F(2x2, 3x3).
    ``cached``: the caller keeps the transformed kernels between calls (a KernelTransforms).
    "pointwise", "winograd" and "winograd4" insist (a clear error where they cannot apply).
    """
    if algorithm not in ALGORITHMS:
        raise MinicnnError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    o, c, kh, kw = w.shape
    if algorithm == "pointwise" and not pointwise.fits(w, stride, padding):
        raise MinicnnError(f"the pointwise lowering needs a 1x1 kernel and padding 0; got {kh}x{kw}, "
                           f"padding {padding}")  # fmt: skip
    if algorithm == "auto" and pointwise.fits(w, stride, padding):
        return "pointwise"
    fits = get_xp(x) is np and (kh, kw) == (3, 3) and stride == 1 and 0 <= padding <= 2
    if algorithm in _WINOGRAD and not fits:
        raise MinicnnError(
            f"Winograd needs a 3x3 kernel, stride 1, padding <= 2 and a CPU array; got {kh}x{kw}, "
            f"stride {stride}, padding {padding}"
        )
    if algorithm != "auto":
        return algorithm
    n, _, h, wd = x.shape
    if not fits or min(o, c) < WINOGRAD_MIN_CHANNELS:
        return "im2col"
    ho, wo = h + 2 * padding - 2, wd + 2 * padding - 2
    if (
        n * np.prod(winograd.tile_counts(ho, wo)) < WINOGRAD_MIN_TILES
        or n * o * c * 9 * ho * wo < WINOGRAD_MIN_WORK
    ):
        return "im2col"
    tiles = n * winograd_f4.tile_count(ho, wo)
    return "winograd4" if _f4_pays(tiles, c, o, cached) else "winograd"


# F(4x4, 3x3) against F(2x2, 3x3), measured layer by layer (benchmarks/winograd_tiles_cpu.py; the
# figures are in benchmarks/RESULTS.md, "Batch 1"). F(4x4)'s 36 GEMMs do 1.8x less work than F(2x2)'s
# 16, but each reads a 36 x O x C transformed kernel for only ``tiles`` columns, and building that
# kernel costs several times F(2x2)'s. So F(4x4) pays where there are many tiles: with at least
# F4_MIN_TILES (VGG16 at batch 1: every layer but the 14x14 ones, whose 16 tiles make GEMMs too narrow
# for BLAS), and, unless the layer keeps its transformed kernel between calls, at least as many
# tiles as channels (else rebuilding the kernel costs more than F(4x4) saves).
F4_MIN_TILES = 32


def _f4_pays(tiles: int, c: int, o: int, cached: bool) -> bool:
    """Whether F(4x4, 3x3) beats F(2x2, 3x3) on a layer with ``tiles`` 4x4 output tiles (over the batch),
    c input and o output channels; ``cached``: its transformed kernel is kept between calls."""
    return tiles >= F4_MIN_TILES and (cached or tiles >= max(c, o))


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


def transforms_kept(transforms, w) -> bool:
    """Whether ``transforms`` (a KernelTransforms or None) keeps kernel w's F(4x4, 3x3) U between
    calls: it is kept, or fits under the process's limit (minicnn/kernels/kernel_cache.py)."""
    o, c = w.shape[:2]
    return transforms is not None and transforms.keeps(36 * o * c * w.itemsize, "winograd4")


def _transformed(w, lowering: str, transforms):
    """Winograd's U for kernel w: the kept one from ``transforms`` (a KernelTransforms) if given and
    current, else built now."""
    module = _WINOGRAD[lowering]
    if transforms is None:
        return module.transform_kernel(w)
    return transforms.get(w, lowering, module.transform_kernel)


def conv2d_forward(
    x, w, b, stride: int, padding: int, algorithm: str = "auto", transforms=None, rectify: bool = False
):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) -> (y (N, O, Ho, Wo), ConvCache).

    Ho = output_size(H, kh, stride, padding), likewise Wo. algorithm: one of ALGORITHMS.
    transforms: a KernelTransforms that keeps Winograd's transformed kernel between calls, or None.
    rectify: y is max(conv, 0) instead, the ReLU applied in the epilogue that adds the bias, while
    each tile is in cache (the same bits as a ReLU layer after it: minicnn/kernels/relu.py).
    """
    xp = get_xp(x)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho, wo = output_size(h, kh, stride, padding), output_size(wd, kw, stride, padding)
    lowering = choose_lowering(x, w, stride, padding, algorithm, cached=transforms_kept(transforms, w))
    if lowering in _WINOGRAD:
        u = _transformed(w, lowering, transforms)
        y = _WINOGRAD[lowering].winograd_conv(x, u, b, padding)
        # NOTE: the ReLU belongs in the Winograd output transform's epilogue (where the bias is
        # added, minicnn/kernels/winograd*.py: output_tiles), while each tile is in cache; until it
        # is there, it runs in place on the fresh output, one pass with no new array.
        return (relu.rectify_in_place(y) if rectify else y), ConvCache(x, ho, wo)
    if lowering == "pointwise":
        return pointwise.forward(x, w, b, stride, rectify), ConvCache(x, ho, wo)
    p, ckk = ho * wo, c * kh * kw
    w2, bias = w.reshape(o, ckk), b[:, None]
    y = xp.empty((n, o, p), dtype=x.dtype)
    tile = _column_tile(x, wo, p, ckk)
    cols = xp.empty((ckk, tile), dtype=x.dtype)
    for image, q0, q1 in _row_tiles(n, p, tile):
        part, out = cols[:, : q1 - q0], y[image, :, q0:q1]
        im2col(x, kh, kw, stride, padding, ho, wo, image * p + q0, image * p + q1, part)
        gemm.product(w2, part, out)  # BLAS on one thread per part (kernels/gemm.py)
        if rectify:  # the bias and the ReLU in one pass, while the tile is still in cache
            relu.add_bias_rectify(out, b)
        else:
            out += bias  # while the tile is still in cache
    return y.reshape(n, o, ho, wo), ConvCache(x, ho, wo)


def conv2d_backward(
    dy,
    cache: ConvCache,
    w,
    stride: int,
    padding: int,
    need_params: bool = False,
    algorithm: str = "auto",
    transforms=None,
):
    """dy (N, O, Ho, Wo) -> (dx (N, C, H, W), dw (O, C, kh, kw) or None, db (O,) or None).

    transforms: as in conv2d_forward (backward reads the forward's transformed kernel).
    """
    if need_params and not holds_input(cache):
        raise MinicnnError(
            "the weight gradient reads the convolution's input, which this cache does not hold"
        )
    xp = get_xp(dy)
    x = cache.x
    # The same choice as forward (made with the layer's own padding and the input's size): backward
    # is the adjoint of the forward's lowering and reads the same transformed kernel.
    lowering = choose_lowering(x, w, stride, padding, algorithm, cached=transforms_kept(transforms, w))
    if not need_params and lowering in _WINOGRAD:
        u = _transformed(w, lowering, transforms)
        return _WINOGRAD[lowering].winograd_conv_adjoint(dy, u, padding), None, None
    if lowering == "pointwise":
        return pointwise.backward(dy, x, w, stride, need_params)
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
        gemm.product(w2.T, signal, dcols[:, :m])
        col2im(dcols[:, :m], kh, kw, stride, padding, cache.ho, cache.wo, g0, g1, dx)
        if need_params:
            im2col(x, kh, kw, stride, padding, cache.ho, cache.wo, g0, g1, cols[:, :m])
            dw2 += gemm.product(signal, cols[:, :m].T)
    if not need_params:
        return dx, None, None
    return dx, dw2.reshape(w.shape), dy3.sum(axis=(0, 2))
