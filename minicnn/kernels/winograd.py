"""Winograd F(2x2, 3x3) convolution (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
Networks", arXiv:1509.09308, section 4): a 3x3 stride-1 convolution with 2.25x fewer multiplications
than im2col.

Cut the output into 2x2 tiles. Each tile depends on a 4x4 tile d of the (padded) input, and

    y_tile = A^T [ (G g G^T) * (B^T d B) ] A          (* is the elementwise product)

with g the 3x3 kernel and

    B^T = [[1, 0, -1, 0],      G = [[1,    0,   0 ],      A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],           [1/2, 1/2, 1/2],             [0, 1, -1, -1]]
           [0, -1, 1, 0],           [1/2,-1/2, 1/2],
           [0, 1,  0, -1]]          [0,    0,   1 ]]

Summed over input channels, the elementwise product becomes 16 independent matrix products, one per
position xi of the 4x4 transformed tile:

    M[xi] (O, P) = U[xi] (O, C) @ V[xi] (C, P)       U = G g G^T per (o, c),  V = B^T d B per (c, tile)

so BLAS still does the heavy work, on 16 * O * C * P multiply-adds instead of im2col's 36 * O * C * P
(4 output pixels per tile, 9 per pixel). The transforms use only additions and halvings, so the
result agrees with direct convolution to a few float32 rounding errors.

Tiles are numbered p = (n * tiles_h + ty) * tiles_w + tx over the whole batch, so at batch 8 each of
the 16 GEMMs of a 14x14 VGG16 layer gets 392 columns instead of 49 per image. The caller works on a
range [r0, r1) of tile rows (n, ty) at a time, which bounds memory like im2col's row tiles do.

CPU only (Numba): there are no GPU kernels for the transforms, so the GPU path keeps im2col.
"""

from __future__ import annotations

import numba
import numpy as np

from minicnn.kernels import gemm


@numba.njit(cache=True, inline="always")
def _g(g0, g1, g2):
    """G @ (g0, g1, g2), in float64 (U is rounded once, when it is stored)."""
    g0, g1, g2 = np.float64(g0), np.float64(g1), np.float64(g2)
    return g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2


@numba.njit(cache=True, inline="always")
def _kernel_tile(w, o, c, flip, u, a, b):
    """u[:, a, b] = G g G^T for g = w[o, c], rotated by 180 degrees if flip."""
    k0, k1, k2 = (2, 1, 0) if flip else (0, 1, 2)  # g[i, j] = w[o, c, k_i, k_j]
    t0 = _g(w[o, c, k0, k0], w[o, c, k1, k0], w[o, c, k2, k0])  # t = G g, column by column
    t1 = _g(w[o, c, k0, k1], w[o, c, k1, k1], w[o, c, k2, k1])
    t2 = _g(w[o, c, k0, k2], w[o, c, k1, k2], w[o, c, k2, k2])
    for i in range(4):  # u = t G^T: row i of u is G @ (row i of t)
        row = _g(t0[i], t1[i], t2[i])
        for j in range(4):
            u[4 * i + j, a, b] = row[j]


@numba.njit(parallel=True, cache=True)
def _kernel_tiles(w, transposed, u):
    """u[:, o, c] = G w[o, c] G^T for w (O, C, 3, 3); or, if ``transposed``, the same for the
    transposed convolution's kernel (channels swapped, each 3x3 rotated by 180 degrees):
    u[:, c, o] = G rot180(w[o, c]) G^T. Each thread owns u[:, a, :]; w is read in either order."""
    for a in numba.prange(u.shape[1]):
        for b in range(u.shape[2]):
            if transposed:
                _kernel_tile(w, b, a, True, u, a, b)
            else:
                _kernel_tile(w, a, b, False, u, a, b)


def transform_kernel(w, transposed: bool = False):
    """w (O, C, 3, 3) -> U (16, O, C) with U[4*i + j, o, c] = (G w[o, c] G^T)[i, j].

    transposed=True: U (16, C, O) of the transposed convolution (what backward applies to dy):
    channels swapped and each 3x3 kernel rotated by 180 degrees before the transform.
    """
    n_out, n_in = w.shape[:2]
    u = np.empty((16, n_in, n_out) if transposed else (16, n_out, n_in), dtype=w.dtype)
    _kernel_tiles(np.ascontiguousarray(w), transposed, u)
    return u


def tile_counts(ho: int, wo: int) -> tuple[int, int]:
    """Number of 2x2 output tiles down and across (the last ones may hang over the edge)."""
    return (ho + 1) // 2, (wo + 1) // 2


@numba.njit(parallel=True, cache=True)
def input_tiles(x, pad, tiles_h, tiles_w, r0, r1, v):
    """V = B^T d B for every input channel and every tile in tile rows [r0, r1).

    x (N, C, H, W); tile (n, ty, tx) reads x[n, :, 2ty - pad : 2ty - pad + 4, 2tx - pad : ...]
    (zero outside the image); v (16, C, (r1 - r0) * tiles_w), v[4*i + j, c, p].
    """
    c_in, h, w = x.shape[1], x.shape[2], x.shape[3]
    width = 2 * tiles_w + 2  # input columns under one row of tiles
    x0, x1 = pad, min(width, w + pad)  # the part of it inside the image
    # Parallel over channels: each thread writes only v[:, c, :], 16 rows that it fills in order.
    # A whole row of tiles is transformed at once, first down (t = B^T d, four rows of the input
    # combined into four rows of t) and then across (t B), so every inner loop runs along a row.
    for c in numba.prange(c_in):
        d = np.zeros((4, width), dtype=x.dtype)  # the 4 input rows, zero-padded
        t = np.empty((4, width), dtype=x.dtype)
        for r in range(r0, r1):
            n, ty = r // tiles_h, r % tiles_h
            for i in range(4):
                iy = 2 * ty - pad + i
                if 0 <= iy < h:
                    d[i, x0:x1] = x[n, c, iy, : x1 - x0]
                else:
                    d[i, x0:x1] = 0.0
            for k in range(width):
                t[0, k] = d[0, k] - d[2, k]
                t[1, k] = d[1, k] + d[2, k]
                t[2, k] = d[2, k] - d[1, k]
                t[3, k] = d[1, k] - d[3, k]
            p = (r - r0) * tiles_w
            for i in range(4):
                for tx in range(tiles_w):
                    a0, a1 = t[i, 2 * tx], t[i, 2 * tx + 1]
                    a2, a3 = t[i, 2 * tx + 2], t[i, 2 * tx + 3]
                    v[4 * i + 0, c, p + tx] = a0 - a2
                    v[4 * i + 1, c, p + tx] = a1 + a2
                    v[4 * i + 2, c, p + tx] = a2 - a1
                    v[4 * i + 3, c, p + tx] = a1 - a3


@numba.njit(parallel=True, cache=True)
def output_tiles(m, bias, tiles_h, tiles_w, r0, r1, y):
    """y_tile = A^T m A (+ bias) for tile rows [r0, r1), cropped at the image's edge.

    m (16, O, (r1 - r0) * tiles_w); bias (O,) or empty for none; y (N, O, Ho, Wo), written in place.
    """
    c_out, ho, wo = y.shape[1], y.shape[2], y.shape[3]
    has_bias = bias.size > 0
    for o in numba.prange(c_out):
        b = bias[o] if has_bias else 0.0
        for r in range(r0, r1):
            n, ty = r // tiles_h, r % tiles_h
            oy = 2 * ty
            for tx in range(tiles_w):
                q = (r - r0) * tiles_w + tx
                # s = A^T m: rows 0 and 1 of the 2x4 intermediate, column j from m[j, 4+j, 8+j, 12+j]
                s0 = m[0, o, q] + m[4, o, q] + m[8, o, q]
                s1 = m[1, o, q] + m[5, o, q] + m[9, o, q]
                s2 = m[2, o, q] + m[6, o, q] + m[10, o, q]
                s3 = m[3, o, q] + m[7, o, q] + m[11, o, q]
                u0 = m[4, o, q] - m[8, o, q] - m[12, o, q]
                u1 = m[5, o, q] - m[9, o, q] - m[13, o, q]
                u2 = m[6, o, q] - m[10, o, q] - m[14, o, q]
                u3 = m[7, o, q] - m[11, o, q] - m[15, o, q]
                ox = 2 * tx  # y = s A, cropped where the tile hangs over the edge
                y[n, o, oy, ox] = s0 + s1 + s2 + b
                if ox + 1 < wo:
                    y[n, o, oy, ox + 1] = s1 - s2 - s3 + b
                if oy + 1 < ho:
                    y[n, o, oy + 1, ox] = u0 + u1 + u2 + b
                    if ox + 1 < wo:
                        y[n, o, oy + 1, ox + 1] = u1 - u2 - u3 + b


# Transformed inputs and products are built this many elements at a time (2 MB each in float32), so
# that V is still in cache when the GEMMs read it, but with at least as many tiles per step as the
# layer has channels (max(C, O); never more than the budget itself), because BLAS runs GEMMs whose
# third side is much shorter than the other two slowly. Measured one thread, process CPU time,
# F(4x4) at batch 1: 128 -> 128 at 112x112 20.5 ms with 2 MB steps against 25.8 ms with 8 MB; but
# 128 -> 256 at 56x56, 2 MB steps with 56 columns made it 1.25x slower.
WINOGRAD_TILE_ELEMENTS = 1 << 19
_GAP = 16  # elements left between the matrices of V and of M: one cache line in float32


def winograd_conv(x, u, bias, pad: int):
    """3x3 stride-1 convolution of x (N, C, H, W) with transformed kernel u (16, O, C) (see
    transform_kernel), zero padding ``pad`` -> y (N, O, H + 2*pad - 2, W + 2*pad - 2).

    bias (O,), or None for none.
    """
    return run_tiles(x, u, bias, pad, 2, tile_counts, input_tiles, output_tiles)


def run_tiles(x, u, bias, pad: int, tile: int, counts, to_tiles, from_tiles):
    """The driver shared by F(2x2, 3x3) and F(4x4, 3x3) (minicnn/kernels/winograd_f4.py): for each step
    of tile rows, V = to_tiles(x), M[xi] = U[xi] @ V[xi] (one batched GEMM), y = from_tiles(M).

    x (N, C, H, W); u (a, O, C) with a = (tile + 2)^2 transformed positions; tile: output pixels per
    tile side; counts(ho, wo) -> (tiles_h, tiles_w); to_tiles / from_tiles: the Numba transforms with the
    signatures of ``input_tiles`` / ``output_tiles`` above. Returns y (N, O, Ho, Wo) in x's dtype.
    """
    n, c, h, w = x.shape
    a, o = u.shape[0], u.shape[1]
    ho, wo = h + 2 * pad - 2, w + 2 * pad - 2
    tiles_h, tiles_w = counts(ho, wo)
    total = n * tiles_h  # tile rows in the batch
    rows = WINOGRAD_TILE_ELEMENTS // (a * max(c, o) * tiles_w)  # tile rows per step, by the budget
    least = min(max(c, o), WINOGRAD_TILE_ELEMENTS)  # columns per GEMM, at least
    rows = max(1, min(max(rows, -(-least // tiles_w)), total))
    rows = max(1, -(-total // -(-total // rows))) if total else 1  # steps of equal size
    # The a matrices of V and M are read and written side by side, a streams at once. Packed
    # back to back they often start a multiple of 4 KiB apart and compete for the same cache sets;
    # a 64-byte gap between them keeps them apart.
    v_buffer = np.empty((a, c * rows * tiles_w + _GAP), dtype=x.dtype)
    m_buffer = np.empty((a, o * rows * tiles_w + _GAP), dtype=x.dtype)
    bias = np.empty(0, dtype=x.dtype) if bias is None else bias
    y = np.empty((n, o, ho, wo), dtype=x.dtype)
    x = np.ascontiguousarray(x)
    for r0 in range(0, n * tiles_h, rows):
        r1 = min(r0 + rows, n * tiles_h)
        k = (r1 - r0) * tiles_w
        v = v_buffer[:, : c * k].reshape(a, c, k)
        m = m_buffer[:, : o * k].reshape(a, o, k)
        to_tiles(x, pad, tiles_h, tiles_w, r0, r1, v)
        gemm.matmul(u, v, out=m)  # BLAS on one thread per part (minicnn/kernels/gemm.py)
        from_tiles(m, bias, tiles_h, tiles_w, r0, r1, y)
    return y
