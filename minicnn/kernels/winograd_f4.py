"""Winograd F(4x4, 3x3) convolution (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
Networks", arXiv:1509.09308, section 4.2): a 3x3 stride-1 convolution with 4x fewer multiplications
than direct convolution (F(2x2, 3x3), minicnn/kernels/winograd.py, saves 2.25x).

Cut the output into 4x4 tiles. Each tile depends on a 6x6 tile d of the (padded) input, and

    y_tile = A^T [ (G g G^T) * (B^T d B) ] A          (* is the elementwise product)

with g the 3x3 kernel and the Toom-Cook matrices for the interpolation points 0, 1, -1, 1/2, -2, inf
(A^T's columns are the powers of each point; G's rows the kernel polynomial's values divided by
prod_l (a_k - a_l); B^T makes the bilinear form exact; B^T is scaled by 2 and G by 1/2 so that B^T
has integer entries):

    B^T = [[2, -3, -4,  3, 2, 0],    G = [[  1/2,     0,     0],    A^T = [[1, 1,  1,   1,  1, 0],
           [0, -2,  1,  5, 2, 0],         [  1/6,   1/6,   1/6],           [0, 1, -1, 1/2, -2, 0],
           [0,  2, -5,  1, 2, 0],         [ -1/6,   1/6,  -1/6],           [0, 1,  1, 1/4,  4, 0],
           [0, -4, -2,  4, 2, 0],         [-8/15, -4/15, -2/15],           [0, 1, -1, 1/8, -8, 1]]
           [0,  1, -2, -1, 2, 0],         [ 1/30, -1/15,  2/15],
           [0,  2, -3, -4, 3, 2]]         [    0,     0,   1/2]]

Why these points and not Lavin & Gray's 0, 1, -1, 2, -2: in float32 the products U[xi] @ V[xi] round
in proportion to the size of the transformed values, and the choice of points sets that size
(Barabasz, Anderson, Soodhalter & Gregg 2020, "Error analysis and improving the accuracy of Winograd
convolution for deep neural networks", ACM TOMS 46(4), who propose 1/2 and -2 among the best for six
points). Measured here on VGG16 layer shapes: max error 2-5e-6 of the largest output, against 5-12e-6
with 2 and -2 (F(2x2, 3x3): 3-7e-7).

Summed over input channels this is 36 independent matrix products, one per position xi of the 6x6
transformed tile,

    M[xi] (O, P) = U[xi] (O, C) @ V[xi] (C, P)       U = G g G^T per (o, c),  V = B^T d B per (c, tile)

so BLAS does 36 * O * C * P multiply-adds for 16 * P output pixels: 2.25 per pixel and channel pair,
against F(2x2, 3x3)'s 4 and direct convolution's 9. The transformed data is smaller too (36 values per
16 outputs instead of 16 per 4), which is what pays on the wide layers with few channels.

The price is rounding: the transforms multiply by up to 8 and divide by 24, so float32 results carry a
few times the rounding error of F(2x2, 3x3). tests/engine/test_winograd_f4.py measures it on every
VGG16 layer shape against float64 (the target: within 1e-5 of the largest output, relative). Most of
it comes from the products U[xi] @ V[xi]; the kernel and output transforms are computed in float64
(rounded once, on store), the input transform in the input's precision (float64 there is slower and
no more accurate).

Tiles are numbered p = (n * tiles_h + ty) * tiles_w + tx over the whole batch, and worked on a range
[r0, r1) of tile rows at a time, exactly as in F(2x2, 3x3) (whose driver, ``winograd.run_tiles``, runs
both). The input gradient is this computation's adjoint, dd = B [U^T (A dY A^T)] B^T per tile with
the overlapping tiles added (``winograd.run_adjoint``; its float32 error is below the forward's:
1.8-3.6e-6 of the largest value on VGG16's layers, against 2.3-5.7e-6 for the transposed
convolution run forward with its own kernel transform, which it replaces). CPU only (Numba).
"""

from __future__ import annotations

import numba
import numpy as np

from minicnn.kernels import winograd
from minicnn.kernels.compiled import njit

TILE = 4  # output pixels per tile side


@njit(inline="always")
def _g(g0, g1, g2):
    """G @ (g0, g1, g2) in float64 (U is rounded once, when it is stored). Multiplications by the
    reciprocals (rounded in float64, far below float32's rounding) instead of divisions, which do not
    vectorise."""
    g0, g1, g2 = np.float64(g0), np.float64(g1), np.float64(g2)
    sixth, fifteenth = 1.0 / 6.0, 1.0 / 15.0
    return (
        0.5 * g0,
        (g0 + g1 + g2) * sixth,
        (g1 - g0 - g2) * sixth,
        -(8.0 * g0 + 4.0 * g1 + 2.0 * g2) * fifteenth,
        (0.5 * g0 - g1 + 2.0 * g2) * fifteenth,
        0.5 * g2,
    )


_2, _3, _4, _5, _8 = np.float32(2), np.float32(3), np.float32(4), np.float32(5), np.float32(8)  # exact in
_HALF, _QUARTER, _EIGHTH = np.float32(0.5), np.float32(0.25), np.float32(0.125)  # any precision


@njit(inline="always")
def _b(d0, d1, d2, d3, d4, d5):
    """B^T @ (d0, ..., d5): the input transform along one axis, in the inputs' precision (the
    constants are float32 so that float32 rows stay float32: twice the SIMD width)."""
    return (
        _2 * (d0 + d4) - _3 * d1 - _4 * d2 + _3 * d3,
        d2 + _5 * d3 + _2 * (d4 - d1),
        d3 - _5 * d2 + _2 * (d1 + d4),
        _2 * (d4 - d2) + _4 * (d3 - d1),
        d1 - d3 + _2 * (d4 - d2),
        _2 * (d1 + d5) - _3 * d2 - _4 * d3 + _3 * d4,
    )


@njit(inline="always")
def _a(m0, m1, m2, m3, m4, m5):
    """A^T @ (m0, ..., m5): the output transform along one axis, in float64."""
    m0, m1, m2 = np.float64(m0), np.float64(m1), np.float64(m2)
    m3, m4, m5 = np.float64(m3), np.float64(m4), np.float64(m5)
    p1, n1 = m1 + m2, m1 - m2
    return (
        m0 + p1 + m3 + m4,
        n1 + 0.5 * m3 - 2.0 * m4,
        p1 + 0.25 * m3 + 4.0 * m4,
        n1 + 0.125 * m3 - 8.0 * m4 + m5,
    )


@njit(inline="always")
def _kernel_tile(w, o, c, out):
    """out[:] = (G g G^T).ravel() (36 values) for g = w[o, c]."""
    t0 = _g(w[o, c, 0, 0], w[o, c, 1, 0], w[o, c, 2, 0])  # t = G g, column by column
    t1 = _g(w[o, c, 0, 1], w[o, c, 1, 1], w[o, c, 2, 1])
    t2 = _g(w[o, c, 0, 2], w[o, c, 1, 2], w[o, c, 2, 2])
    for i in range(6):  # u = t G^T: row i of u is G @ (row i of t)
        row = _g(t0[i], t1[i], t2[i])
        for j in range(6):
            out[6 * i + j] = row[j]


@njit(parallel=True)
def _kernel_tiles(w, u):
    """u[:, o, c] = G w[o, c] G^T for w (O, C, 3, 3). Each thread owns u[:, o, :]."""
    for o in numba.prange(u.shape[1]):
        # The 36 matrices of u lie O*C*4 bytes apart, often a multiple of 4 KiB: writing one (o, c)
        # at a time would touch 36 lines of the same cache set, evicting each other. Build the
        # row u[:, o, :] in a small buffer, one tile after another, then store it matrix by matrix.
        row = np.empty((u.shape[2], 36), dtype=u.dtype)
        for c in range(u.shape[2]):
            _kernel_tile(w, o, c, row[c])
        for xi in range(36):
            for c in range(u.shape[2]):  # a loop, not a slice copy (minicnn/kernels/winograd.py, "Loops")
                u[xi, o, c] = row[c, xi]


def transform_kernel(w):
    """w (O, C, 3, 3) -> U (36, O, C) with U[6*i + j, o, c] = (G w[o, c] G^T)[i, j], in w's dtype.

    Backward uses the same U, transposed (``winograd.run_adjoint``).
    """
    u = np.empty((36, *w.shape[:2]), dtype=w.dtype)
    _kernel_tiles(np.ascontiguousarray(w), u)
    return u


def tile_counts(ho: int, wo: int) -> tuple[int, int]:
    """Number of 4x4 output tiles down and across (the last ones may hang over the edge)."""
    return (ho + TILE - 1) // TILE, (wo + TILE - 1) // TILE


def tile_count(ho: int, wo: int) -> int:
    """Number of 4x4 output tiles of one Ho x Wo image."""
    tiles_h, tiles_w = tile_counts(ho, wo)
    return tiles_h * tiles_w


@njit(parallel=True)
def input_tiles(x, pad, tiles_h, tiles_w, r0, r1, v, parts):
    """V = B^T d B for every input channel and every tile in tile rows [r0, r1).

    x (N, C, H, W); tile (n, ty, tx) reads x[n, :, 4ty - pad : 4ty - pad + 6, 4tx - pad : ...]
    (zero outside the image); v (36, >= C * k) with k = (r1 - r0) * tiles_w: row xi holds the
    matrix V[xi] (C, k) row-major, V[6*i + j][c, p] = v[6*i + j, c * k + p] (``winograd.run_tiles``
    says why V is passed so). parts: Numba's thread count, each thread doing one range of channels
    (``winograd.channel_range``) and writing only their V[:][c, :].
    """
    count = x.shape[1]
    parts = max(1, min(count, parts))
    for part in numba.prange(parts):
        c0, c1 = winograd.channel_range(count, parts, part)
        input_channels(x, pad, tiles_h, tiles_w, r0, r1, v, c0, c1)


@njit(nogil=True)
def input_channels(x, pad, tiles_h, tiles_w, r0, r1, v, c0, c1):
    """``input_tiles`` for the input channels [c0, c1) only, on the calling thread."""
    h, w = x.shape[2], x.shape[3]
    width = 4 * tiles_w + 2  # input columns under one row of tiles
    x0, x1 = pad, min(width, w + pad)  # the part of it inside the image
    k = (r1 - r0) * tiles_w  # columns of each matrix V[xi]
    # As in F(2x2, 3x3): a whole row of tiles is transformed first down (t = B^T d: six input rows
    # into six rows of t), then across. Across, the six values of each tile go to a small buffer
    # first and then, row by row, to V: written straight into V's six rows, the loop did not
    # vectorise (LLVM cannot prove that six rows of one array do not overlap), and this loop was a
    # third of the transform's time.
    d = np.zeros((6, width), dtype=x.dtype)  # the 6 input rows, zero-padded
    t = np.empty((6, width), dtype=x.dtype)
    across = np.empty((6, tiles_w), dtype=x.dtype)
    for c in range(c0, c1):
        for r in range(r0, r1):
            n, ty = r // tiles_h, r % tiles_h
            for i in range(6):
                iy = 4 * ty - pad + i
                if 0 <= iy < h:
                    row, source = d[i, x0:x1], x[n, c, iy]
                    for col in range(x1 - x0):
                        row[col] = source[col]
                else:
                    d[i, x0:x1] = 0.0
            d0, d1, d2, d3, d4, d5 = d[0], d[1], d[2], d[3], d[4], d[5]
            for col in range(width):
                b = _b(d0[col], d1[col], d2[col], d3[col], d4[col], d5[col])
                for i in range(6):
                    t[i, col] = b[i]
            p = c * k + (r - r0) * tiles_w  # where this row of tiles starts in each row of v
            for i in range(6):
                ti = t[i]
                for tx in range(tiles_w):
                    col = 4 * tx
                    b = _b(ti[col], ti[col + 1], ti[col + 2], ti[col + 3], ti[col + 4], ti[col + 5])
                    for j in range(6):
                        across[j, tx] = b[j]
                for j in range(6):
                    out = v[6 * i + j, p : p + tiles_w]
                    for tx in range(tiles_w):
                        out[tx] = across[j, tx]


@njit(parallel=True)
def output_tiles(m, bias, tiles_h, tiles_w, r0, r1, y, parts):
    """y_tile = A^T m A (+ bias) for tile rows [r0, r1), cropped at the image's edge.

    m (36, >= O * k), k = (r1 - r0) * tiles_w, M[xi][o, p] = m[xi, o * k + p] (as v in
    ``input_tiles``); bias (O,) or empty for none; y (N, O, Ho, Wo), written in place. parts: as in
    ``input_tiles``, over output channels.
    """
    count = y.shape[1]
    parts = max(1, min(count, parts))
    for part in numba.prange(parts):
        c0, c1 = winograd.channel_range(count, parts, part)
        output_channels(m, bias, tiles_h, tiles_w, r0, r1, y, c0, c1)


@njit(nogil=True)
def output_channels(m, bias, tiles_h, tiles_w, r0, r1, y, o0, o1):
    """``output_tiles`` for the output channels [o0, o1) only, on the calling thread."""
    ho, wo = y.shape[2], y.shape[3]
    has_bias = bias.size > 0
    full = wo // 4  # tiles that lie wholly inside the image across
    k = (r1 - r0) * tiles_w
    # Like the input transform, a whole row of tiles at a time: first down (s = A^T m, 6 matrices
    # read as 6 streams along the row), then across, so that the inner loops run along tx and
    # vectorise; tile by tile (36 values gathered per tile) they do not. Across, each tile's four
    # outputs go to a buffer first and then into y's row, four apart: the two in one loop (with the
    # crop) did not vectorise.
    s = np.empty((4, 6, tiles_w), dtype=np.float64)
    across = np.empty((4, tiles_w), dtype=np.float64)
    for o in range(o0, o1):
        b = bias[o] if has_bias else 0.0
        for r in range(r0, r1):
            n, ty = r // tiles_h, r % tiles_h
            oy, q = 4 * ty, o * k + (r - r0) * tiles_w
            q1 = q + tiles_w  # this row of tiles is [q, q1) in each row of m
            for j in range(6):
                m0, m1, m2 = m[j, q:q1], m[6 + j, q:q1], m[12 + j, q:q1]
                m3, m4, m5 = m[18 + j, q:q1], m[24 + j, q:q1], m[30 + j, q:q1]
                for tx in range(tiles_w):
                    a = _a(m0[tx], m1[tx], m2[tx], m3[tx], m4[tx], m5[tx])
                    s[0, j, tx], s[1, j, tx], s[2, j, tx], s[3, j, tx] = a
            for i in range(min(4, ho - oy)):  # y = s A, cropped where the tile hangs over the edge
                for tx in range(tiles_w):
                    e = _a(s[i, 0, tx], s[i, 1, tx], s[i, 2, tx], s[i, 3, tx], s[i, 4, tx], s[i, 5, tx])
                    across[0, tx], across[1, tx], across[2, tx], across[3, tx] = e
                row = y[n, o, oy + i]
                for tx in range(full):
                    row[4 * tx] = across[0, tx] + b
                    row[4 * tx + 1] = across[1, tx] + b
                    row[4 * tx + 2] = across[2, tx] + b
                    row[4 * tx + 3] = across[3, tx] + b
                for tx in range(full, tiles_w):
                    for j in range(wo - 4 * tx):
                        row[4 * tx + j] = across[j, tx] + b


@njit(inline="always")
def _a_adjoint(y0, y1, y2, y3):
    """A @ (y0, ..., y3), A = (A^T)^T (6x4): the output transform's adjoint along one axis. Column k of
    A^T holds the powers of point k. In the gradient's precision, like the input transform (float64
    here is slower; the float32 error is measured in tests/engine/test_winograd_f4.py)."""
    even, odd = y0 + y2, y1 + y3
    return (
        y0,
        even + odd,
        even - odd,
        y0 + _HALF * y1 + _QUARTER * y2 + _EIGHTH * y3,
        y0 - _2 * y1 + _4 * y2 - _8 * y3,
        y3,
    )


@njit(inline="always")
def _b_adjoint(e0, e1, e2, e3, e4, e5):
    """B @ (e0, ..., e5), B = (B^T)^T: the input transform's adjoint along one axis, in the
    gradient's precision (like the input transform it mirrors; float32 constants as in ``_b``)."""
    return (
        _2 * e0,
        _2 * (e2 + e5 - e1) - _3 * e0 - _4 * e3 + e4,
        e1 - _4 * e0 - _5 * e2 - _2 * (e3 + e4) - _3 * e5,
        _3 * e0 + _5 * e1 + e2 + _4 * (e3 - e5) - e4,
        _2 * (e0 + e1 + e2 + e3 + e4) + _3 * e5,
        _2 * e5,
    )


@njit(parallel=True)
def output_gradient_tiles(dy, tiles_h, tiles_w, r0, r1, g, parts):
    """G = A dY A^T for every output channel and every tile in tile rows [r0, r1): the adjoint of
    ``output_tiles`` (bias aside).

    dy (N, O, Ho, Wo); tile (n, ty, tx) reads dy[n, :, 4ty : 4ty + 4, 4tx : 4tx + 4], zero where it
    hangs over the edge (there the forward cropped); g (36, >= O * k), k = (r1 - r0) * tiles_w,
    G[6*i + j][o, p] = g[6*i + j, o * k + p] (as v in ``input_tiles``). parts: as in ``input_tiles``.
    """
    count = dy.shape[1]
    parts = max(1, min(count, parts))
    for part in numba.prange(parts):
        c0, c1 = winograd.channel_range(count, parts, part)
        output_gradient_channels(dy, tiles_h, tiles_w, r0, r1, g, c0, c1)


@njit(nogil=True)
def output_gradient_channels(dy, tiles_h, tiles_w, r0, r1, g, o0, o1):
    """``output_gradient_tiles`` for the output channels [o0, o1) only, on the calling thread."""
    ho, wo = dy.shape[2], dy.shape[3]
    width = 4 * tiles_w  # output columns under one row of tiles (past wo: zero)
    k = (r1 - r0) * tiles_w
    # Laid out like input_channels: a whole row of tiles down (t = A dY: four rows of dy into six
    # of t) and then across, through a buffer into the six rows of g.
    d = np.zeros((4, width), dtype=dy.dtype)
    t = np.empty((6, width), dtype=dy.dtype)
    across = np.empty((6, tiles_w), dtype=dy.dtype)
    for o in range(o0, o1):
        for r in range(r0, r1):
            n, ty = r // tiles_h, r % tiles_h
            for i in range(4):
                iy = 4 * ty + i
                if iy < ho:
                    row, source = d[i], dy[n, o, iy]
                    for col in range(wo):
                        row[col] = source[col]
                else:
                    d[i, :wo] = 0.0
            for col in range(width):
                a = _a_adjoint(d[0, col], d[1, col], d[2, col], d[3, col])
                for i in range(6):
                    t[i, col] = a[i]
            p = o * k + (r - r0) * tiles_w
            for i in range(6):
                for tx in range(tiles_w):
                    col = 4 * tx
                    a = _a_adjoint(t[i, col], t[i, col + 1], t[i, col + 2], t[i, col + 3])
                    for j in range(6):
                        across[j, tx] = a[j]
                for j in range(6):
                    out = g[6 * i + j, p : p + tiles_w]
                    for tx in range(tiles_w):
                        out[tx] = across[j, tx]


@njit(parallel=True)
def input_gradient_tiles(e, pad, tiles_h, tiles_w, r0, r1, dx, parts):
    """dx[n, c, 4ty - pad + i, 4tx - pad + j] += (B E B^T)[i, j] for every tile in tile rows [r0, r1),
    inside the image: the adjoint of ``input_tiles``.

    e (36, >= C * k), k = (r1 - r0) * tiles_w, E[i, j] = e[6*i + j, c * k + p] for tile p of channel c
    (as v in ``input_tiles``); dx (N, C, H, W), added to in place (the caller zeroes it).
    Neighbouring 6x6 input tiles overlap by two rows and two columns, as in the forward, where they
    read the same pixels; here their contributions to those pixels add up. parts: as in
    ``input_tiles`` (each thread adds only to its channels of dx).
    """
    count = dx.shape[1]
    parts = max(1, min(count, parts))
    for part in numba.prange(parts):
        c0, c1 = winograd.channel_range(count, parts, part)
        input_gradient_channels(e, pad, tiles_h, tiles_w, r0, r1, dx, c0, c1)


@njit(nogil=True)
def input_gradient_channels(e, pad, tiles_h, tiles_w, r0, r1, dx, c0, c1):
    """``input_gradient_tiles`` for the input channels [c0, c1) only, on the calling thread."""
    h, w = dx.shape[2], dx.shape[3]
    width = 4 * tiles_w + 2  # input columns under one row of tiles
    x0, x1 = pad, min(width, w + pad)  # the part of it inside the image
    k = (r1 - r0) * tiles_w
    # Mirror of output_channels: a row of tiles down first (s = B E, six matrices read as six
    # streams along the row), then across into six rows of the input, where tile tx's last two
    # columns are tile tx + 1's first two. Tile row ty's last two rows are ty + 1's first two: they
    # are carried to the next tile row and added here, so that most rows of dx are written once (=),
    # not read and written (+=) twice (which is 1.5x dx's memory traffic). Only the rows shared with
    # a tile row of another call (another step) are added to dx.
    s = np.empty((6, 6, tiles_w), dtype=e.dtype)
    row = np.empty((6, width), dtype=e.dtype)
    carry = np.empty((2, width), dtype=e.dtype)
    across = np.empty((6, tiles_w), dtype=e.dtype)
    for c in range(c0, c1):
        for r in range(r0, r1):
            n, ty = r // tiles_h, r % tiles_h
            q = c * k + (r - r0) * tiles_w
            q1 = q + tiles_w  # this row of tiles is [q, q1) in each row of e
            for j in range(6):
                e0, e1, e2 = e[j, q:q1], e[6 + j, q:q1], e[12 + j, q:q1]
                e3, e4, e5 = e[18 + j, q:q1], e[24 + j, q:q1], e[30 + j, q:q1]
                for tx in range(tiles_w):
                    b = _b_adjoint(e0[tx], e1[tx], e2[tx], e3[tx], e4[tx], e5[tx])
                    for i in range(6):
                        s[i, j, tx] = b[i]
            for i in range(6):
                for tx in range(tiles_w):  # along the row, no dependence between tiles: vectorises
                    b = _b_adjoint(s[i, 0, tx], s[i, 1, tx], s[i, 2, tx], s[i, 3, tx], s[i, 4, tx],
                                   s[i, 5, tx])  # fmt: skip
                    for j in range(6):
                        across[j, tx] = b[j]
                row[i, 0], row[i, 1] = across[0, 0], across[1, 0]
                for tx in range(1, tiles_w):  # tile tx's first two columns are tile tx - 1's last two
                    row[i, 4 * tx] = across[0, tx] + across[4, tx - 1]
                    row[i, 4 * tx + 1] = across[1, tx] + across[5, tx - 1]
                for tx in range(tiles_w):
                    row[i, 4 * tx + 2] = across[2, tx]
                    row[i, 4 * tx + 3] = across[3, tx]
                row[i, width - 2], row[i, width - 1] = across[4, tiles_w - 1], across[5, tiles_w - 1]
            joined = r > r0 and ty > 0  # tile row ty - 1 was done here: its last two rows are in carry
            if joined:
                for i in range(2):
                    for col in range(width):
                        row[i, col] += carry[i, col]
            last = r == r1 - 1 or ty == tiles_h - 1  # tile row ty + 1 is not done here (or none)
            for i in range(6 if last else 4):
                iy = 4 * ty - pad + i
                if 0 <= iy < h:
                    out = dx[n, c, iy]
                    if (i < 2 and not joined) or i >= 4:  # shared with a tile row of another call
                        for col in range(x0, x1):  # explicit loops: Numba's slice += allocates
                            out[col - x0] += row[i, col]
                    else:
                        source = row[i, x0:x1]
                        for col in range(x1 - x0):
                            out[col] = source[col]
            if not last:
                for i in range(2):
                    kept, source = carry[i], row[4 + i]
                    for col in range(width):
                        kept[col] = source[col]


INPUT = winograd.Transform(input_tiles, input_channels)
OUTPUT = winograd.Transform(output_tiles, output_channels)
OUTPUT_GRADIENT = winograd.Transform(output_gradient_tiles, output_gradient_channels)
INPUT_GRADIENT = winograd.Transform(input_gradient_tiles, input_gradient_channels)


def winograd_conv(x, u, bias, pad: int):
    """3x3 stride-1 convolution of x (N, C, H, W) with transformed kernel u (36, O, C) (see
    transform_kernel), zero padding ``pad`` -> y (N, O, H + 2*pad - 2, W + 2*pad - 2), x's dtype.

    bias (O,), or None for none.
    """
    return winograd.run_tiles(x, u, bias, pad, TILE, tile_counts, INPUT, OUTPUT)


def winograd_conv_adjoint(dy, u, pad: int):
    """The input gradient of ``winograd_conv(x, u, bias, pad)``: dy (N, O, Ho, Wo) -> dx (N, C, Ho - 2*pad
    + 2, Wo - 2*pad + 2), with the forward's own u (36, O, C) (see ``winograd.run_adjoint``)."""
    return winograd.run_adjoint(dy, u, pad, tile_counts, OUTPUT_GRADIENT, INPUT_GRADIENT, True)
