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

The input gradient is the adjoint of this computation with the same U (``run_adjoint``).

Loops: each transform is one Numba kernel over a range of channels, ``*_channels`` (compiled
without threads and without the GIL), and its ``*_tiles`` twin, a ``parallel=True`` loop calling it
on one range of channels per Numba thread (``channel_range``). The loops are compiled once and
serve both the steps that have the threads to themselves and the threads of ``gemm.run_parts``
(where a parallel kernel must not run); a ``parallel=True`` kernel holding the loops itself would
compile them twice, as the parallel build and again as a serial twin, and Numba's parallel
compilation is the slower of the two. Arrays are copied by explicit loops, never by slice
assignment (``a[i, :n] = b[j, :n]``): each such statement makes Numba compile its shape-mismatch
error message (string formatting code) into the kernel, seconds of a first run's compilation for
nothing. The loops run over row views indexed from 0 (``row = d[i, x0:x1]``, then
``row[col]``): an index such as ``x0 + col`` may be negative as far as the compiler knows, and the
check that wraps negative indices around kept the loop from vectorising.

CPU only (Numba): there are no GPU kernels for the transforms, so the GPU path keeps im2col.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, NamedTuple

import numba
import numpy as np

from minicnn.kernels import gemm
from minicnn.kernels.compiled import njit


@njit(inline="always")
def _g(g0, g1, g2):
    """G @ (g0, g1, g2), in float64 (U is rounded once, when it is stored)."""
    g0, g1, g2 = np.float64(g0), np.float64(g1), np.float64(g2)
    return g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2


@njit(inline="always")
def _kernel_tile(w, o, c, u):
    """u[:, o, c] = G g G^T for g = w[o, c]."""
    t0 = _g(w[o, c, 0, 0], w[o, c, 1, 0], w[o, c, 2, 0])  # t = G g, column by column
    t1 = _g(w[o, c, 0, 1], w[o, c, 1, 1], w[o, c, 2, 1])
    t2 = _g(w[o, c, 0, 2], w[o, c, 1, 2], w[o, c, 2, 2])
    for i in range(4):  # u = t G^T: row i of u is G @ (row i of t)
        row = _g(t0[i], t1[i], t2[i])
        for j in range(4):
            u[4 * i + j, o, c] = row[j]


@njit(parallel=True)
def _kernel_tiles(w, u):
    """u[:, o, c] = G w[o, c] G^T for w (O, C, 3, 3). Each thread owns u[:, o, :]."""
    for o in numba.prange(u.shape[1]):
        for c in range(u.shape[2]):
            _kernel_tile(w, o, c, u)


def transform_kernel(w):
    """w (O, C, 3, 3) -> U (16, O, C) with U[4*i + j, o, c] = (G w[o, c] G^T)[i, j], in w's dtype.

    Backward uses the same U, transposed (``run_adjoint``).
    """
    u = np.empty((16, *w.shape[:2]), dtype=w.dtype)
    _kernel_tiles(np.ascontiguousarray(w), u)
    return u


def tile_counts(ho: int, wo: int) -> tuple[int, int]:
    """Number of 2x2 output tiles down and across (the last ones may hang over the edge)."""
    return (ho + 1) // 2, (wo + 1) // 2


@njit(inline="always")
def channel_range(count, parts, part):
    """[c0, c1) (int64, as Python's ints are typed, so that the ``*_channels`` kernels called here
    and from Python share one build) of the ``part``-th of ``parts`` near-equal contiguous ranges of
    ``count`` channels. The threaded transforms cut the channels into ``parts`` ranges, one per
    Numba thread (their last argument), so that each range's buffers are made once, not once per
    channel."""
    part = np.int64(part)
    return count * part // parts, count * (part + 1) // parts


@njit(parallel=True)
def input_tiles(x, pad, tiles_h, tiles_w, r0, r1, v, parts):
    """V = B^T d B for every input channel and every tile in tile rows [r0, r1).

    x (N, C, H, W); tile (n, ty, tx) reads x[n, :, 2ty - pad : 2ty - pad + 4, 2tx - pad : ...]
    (zero outside the image); v (16, >= C * k) with k = (r1 - r0) * tiles_w: row xi holds the matrix
    V[xi] (C, k) row-major, V[4*i + j][c, p] = v[4*i + j, c * k + p] (``run_tiles`` says why).
    parts: Numba's thread count; each thread does one range of channels (``channel_range``) and
    writes only their V[:][c, :] (see "Loops" above).
    """
    count = x.shape[1]
    parts = max(1, min(count, parts))
    for part in numba.prange(parts):
        c0, c1 = channel_range(count, parts, part)
        input_channels(x, pad, tiles_h, tiles_w, r0, r1, v, c0, c1)


@njit(nogil=True)
def input_channels(x, pad, tiles_h, tiles_w, r0, r1, v, c0, c1):
    """``input_tiles`` for the input channels [c0, c1) only, on the calling thread."""
    h, w = x.shape[2], x.shape[3]
    width = 2 * tiles_w + 2  # input columns under one row of tiles
    x0, x1 = pad, min(width, w + pad)  # the part of it inside the image
    k = (r1 - r0) * tiles_w  # columns of each matrix V[xi]
    # Each channel's 16 rows of V are filled in order. A whole row of tiles is transformed at once,
    # first down (t = B^T d, four rows of the input combined into four rows of t) and then across
    # (t B), so every inner loop runs along a row.
    d = np.zeros((4, width), dtype=x.dtype)  # the 4 input rows, zero-padded
    t = np.empty((4, width), dtype=x.dtype)
    for c in range(c0, c1):
        for r in range(r0, r1):
            n, ty = r // tiles_h, r % tiles_h
            for i in range(4):
                iy = 2 * ty - pad + i
                row = d[i, x0:x1]
                if 0 <= iy < h:
                    source = x[n, c, iy]
                    for col in range(x1 - x0):
                        row[col] = source[col]
                else:
                    row[:] = 0.0
            d0, d1, d2, d3 = d[0], d[1], d[2], d[3]
            t0, t1, t2, t3 = t[0], t[1], t[2], t[3]
            for col in range(width):
                t0[col] = d0[col] - d2[col]
                t1[col] = d1[col] + d2[col]
                t2[col] = d2[col] - d1[col]
                t3[col] = d1[col] - d3[col]
            p = c * k + (r - r0) * tiles_w
            for i in range(4):
                ti = t[i]
                v0, v1 = v[4 * i, p : p + tiles_w], v[4 * i + 1, p : p + tiles_w]
                v2, v3 = v[4 * i + 2, p : p + tiles_w], v[4 * i + 3, p : p + tiles_w]
                for tx in range(tiles_w):
                    a0, a1 = ti[2 * tx], ti[2 * tx + 1]
                    a2, a3 = ti[2 * tx + 2], ti[2 * tx + 3]
                    v0[tx] = a0 - a2
                    v1[tx] = a1 + a2
                    v2[tx] = a2 - a1
                    v3[tx] = a1 - a3


@njit(parallel=True)
def output_tiles(m, bias, tiles_h, tiles_w, r0, r1, y, parts):
    """y_tile = A^T m A (+ bias) for tile rows [r0, r1), cropped at the image's edge.

    m (16, >= O * k), k = (r1 - r0) * tiles_w, M[xi][o, p] = m[xi, o * k + p] (as v in
    ``input_tiles``); bias (O,) or empty for none; y (N, O, Ho, Wo), written in place. parts: as in
    ``input_tiles``, over output channels.
    """
    count = y.shape[1]
    parts = max(1, min(count, parts))
    for part in numba.prange(parts):
        c0, c1 = channel_range(count, parts, part)
        output_channels(m, bias, tiles_h, tiles_w, r0, r1, y, c0, c1)


@njit(nogil=True)
def output_channels(m, bias, tiles_h, tiles_w, r0, r1, y, o0, o1):
    """``output_tiles`` for the output channels [o0, o1) only, on the calling thread."""
    ho, wo = y.shape[2], y.shape[3]
    has_bias = bias.size > 0
    k = (r1 - r0) * tiles_w
    for o in range(o0, o1):
        b = bias[o] if has_bias else 0.0
        for r in range(r0, r1):
            n, ty = r // tiles_h, r % tiles_h
            oy = 2 * ty
            for tx in range(tiles_w):
                q = o * k + (r - r0) * tiles_w + tx
                # s = A^T m: rows 0 and 1 of the 2x4 intermediate, column j from m[j, 4+j, 8+j, 12+j]
                s0 = m[0, q] + m[4, q] + m[8, q]
                s1 = m[1, q] + m[5, q] + m[9, q]
                s2 = m[2, q] + m[6, q] + m[10, q]
                s3 = m[3, q] + m[7, q] + m[11, q]
                u0 = m[4, q] - m[8, q] - m[12, q]
                u1 = m[5, q] - m[9, q] - m[13, q]
                u2 = m[6, q] - m[10, q] - m[14, q]
                u3 = m[7, q] - m[11, q] - m[15, q]
                ox = 2 * tx  # y = s A, cropped where the tile hangs over the edge
                y[n, o, oy, ox] = s0 + s1 + s2 + b
                if ox + 1 < wo:
                    y[n, o, oy, ox + 1] = s1 - s2 - s3 + b
                if oy + 1 < ho:
                    y[n, o, oy + 1, ox] = u0 + u1 + u2 + b
                    if ox + 1 < wo:
                        y[n, o, oy + 1, ox + 1] = u1 - u2 - u3 + b


@njit(parallel=True)
def output_gradient_tiles(dy, tiles_h, tiles_w, r0, r1, g, parts):
    """G = A dY A^T for every output channel and every tile in tile rows [r0, r1): the adjoint of
    ``output_tiles`` (bias aside). A = (A^T)^T: (A y) = (y0, y0 + y1, y0 - y1, -y1).

    dy (N, O, Ho, Wo); tile (n, ty, tx) reads dy[n, :, 2ty : 2ty + 2, 2tx : 2tx + 2], zero where it
    hangs over the edge (there the forward cropped); g (16, >= O * k), k = (r1 - r0) * tiles_w,
    G[4*i + j][o, p] = g[4*i + j, o * k + p] (as v in ``input_tiles``). parts: as in ``input_tiles``.
    """
    count = dy.shape[1]
    parts = max(1, min(count, parts))
    for part in numba.prange(parts):
        c0, c1 = channel_range(count, parts, part)
        output_gradient_channels(dy, tiles_h, tiles_w, r0, r1, g, c0, c1)


@njit(nogil=True)
def output_gradient_channels(dy, tiles_h, tiles_w, r0, r1, g, o0, o1):
    """``output_gradient_tiles`` for the output channels [o0, o1) only, on the calling thread."""
    ho, wo = dy.shape[2], dy.shape[3]
    k = (r1 - r0) * tiles_w
    for o in range(o0, o1):
        for r in range(r0, r1):
            n, ty = r // tiles_h, r % tiles_h
            oy, full_h = 2 * ty, 2 * ty + 1 < ho
            for tx in range(tiles_w):
                q, ox = o * k + (r - r0) * tiles_w + tx, 2 * tx
                full_w = ox + 1 < wo
                # in float64 (one type for the tuple below; G is rounded once, on store)
                y00 = np.float64(dy[n, o, oy, ox])
                y01 = np.float64(dy[n, o, oy, ox + 1]) if full_w else 0.0
                y10 = np.float64(dy[n, o, oy + 1, ox]) if full_h else 0.0
                y11 = np.float64(dy[n, o, oy + 1, ox + 1]) if full_h and full_w else 0.0
                # t = A dY (4 x 2), then G = t A^T, row by row
                t = ((y00, y01), (y00 + y10, y01 + y11), (y00 - y10, y01 - y11), (-y10, -y11))
                for i in range(4):
                    a0, a1 = t[i]
                    g[4 * i + 0, q] = a0
                    g[4 * i + 1, q] = a0 + a1
                    g[4 * i + 2, q] = a0 - a1
                    g[4 * i + 3, q] = -a1


@njit(parallel=True)
def input_gradient_tiles(e, pad, tiles_h, tiles_w, r0, r1, dx, parts):
    """dx[n, c, 2ty - pad + i, 2tx - pad + j] += (B E B^T)[i, j] for every tile in tile rows [r0, r1),
    inside the image: the adjoint of ``input_tiles``. B = (B^T)^T:
    (B e) = (e0, e1 - e2 + e3, e1 + e2 - e0, -e3).

    e (16, >= C * k), k = (r1 - r0) * tiles_w, E[i, j] = e[4*i + j, c * k + p] for tile p of channel c
    (as v in ``input_tiles``); dx (N, C, H, W), added to in place (the caller zeroes it).
    Neighbouring 4x4 input tiles overlap by two rows and columns; their contributions to those pixels
    add up. parts: as in ``input_tiles``.
    """
    count = dx.shape[1]
    parts = max(1, min(count, parts))
    for part in numba.prange(parts):
        c0, c1 = channel_range(count, parts, part)
        input_gradient_channels(e, pad, tiles_h, tiles_w, r0, r1, dx, c0, c1)


@njit(nogil=True)
def input_gradient_channels(e, pad, tiles_h, tiles_w, r0, r1, dx, c0, c1):
    """``input_gradient_tiles`` for the input channels [c0, c1) only, on the calling thread."""
    h, w = dx.shape[2], dx.shape[3]
    k = (r1 - r0) * tiles_w
    s = np.empty((4, 4), dtype=e.dtype)
    for c in range(c0, c1):
        for r in range(r0, r1):
            n, ty = r // tiles_h, r % tiles_h
            for tx in range(tiles_w):
                q = c * k + (r - r0) * tiles_w + tx
                for j in range(4):  # s = B E, column by column
                    e0, e1, e2, e3 = e[j, q], e[4 + j, q], e[8 + j, q], e[12 + j, q]
                    s[0, j], s[1, j], s[2, j], s[3, j] = e0, e1 - e2 + e3, e1 + e2 - e0, -e3
                for i in range(4):  # dd = s B^T, row by row, added where it lies inside the image
                    iy = 2 * ty - pad + i
                    if 0 <= iy < h:
                        row = (s[i, 0], s[i, 1] - s[i, 2] + s[i, 3], s[i, 1] + s[i, 2] - s[i, 0], -s[i, 3])
                        for j in range(4):
                            ix = 2 * tx - pad + j
                            if 0 <= ix < w:
                                dx[n, c, iy, ix] += row[j]


class Transform(NamedTuple):
    """One Winograd transform as its two Numba kernels, with the same arguments (``input_tiles``'s,
    ``output_tiles``'s, ...): ``threaded(*args)`` does every channel on Numba's threads;
    ``channels(*args, c0, c1)`` does the channels [c0, c1) on the calling thread, without the GIL
    (what each thread of ``gemm.run_parts`` runs). ``threaded`` takes one more argument, ``parts``
    (Numba's thread count), and calls ``channels`` on that many ranges of channels at once, so each
    transform's loops are compiled once (see "Loops" above)."""

    threaded: Any
    channels: Any


INPUT = Transform(input_tiles, input_channels)
OUTPUT = Transform(output_tiles, output_channels)
OUTPUT_GRADIENT = Transform(output_gradient_tiles, output_gradient_channels)
INPUT_GRADIENT = Transform(input_gradient_tiles, input_gradient_channels)


# Transformed inputs and products are built this many elements at a time (2 MB each in float32), so
# that V is still in cache when the GEMMs read it, but with at least as many tiles per step as the
# layer has channels (max(C, O); never more than the budget itself), because BLAS runs GEMMs whose
# third side is much shorter than the other two slowly (the layer timings behind both choices:
# benchmarks/RESULTS.md, "Figures moved out of minicnn's docstrings").
WINOGRAD_TILE_ELEMENTS = 1 << 19
_GAP = 16  # elements left between the matrices of V and of M: one cache line in float32


def winograd_conv(x, u, bias, pad: int):
    """3x3 stride-1 convolution of x (N, C, H, W) with transformed kernel u (16, O, C) (see
    transform_kernel), zero padding ``pad`` -> y (N, O, H + 2*pad - 2, W + 2*pad - 2).

    bias (O,), or None for none.
    """
    return run_tiles(x, u, bias, pad, 2, tile_counts, INPUT, OUTPUT)


def winograd_conv_adjoint(dy, u, pad: int):
    """The input gradient of ``winograd_conv(x, u, bias, pad)``: dy (N, O, Ho, Wo) -> dx (N, C, Ho - 2*pad
    + 2, Wo - 2*pad + 2), with the forward's own u (16, O, C) (see ``run_adjoint``)."""
    return run_adjoint(dy, u, pad, tile_counts, OUTPUT_GRADIENT, INPUT_GRADIENT)


def _steps(total: int, a: int, c: int, o: int, tiles_w: int) -> int:
    """Tile rows per step, out of ``total``: by the budget, with at least max(c, o) columns per GEMM
    (never more than the budget itself) and steps of equal size; a transformed positions."""
    rows = WINOGRAD_TILE_ELEMENTS // (a * max(c, o) * tiles_w)  # tile rows per step, by the budget
    least = min(max(c, o), WINOGRAD_TILE_ELEMENTS)  # columns per GEMM, at least
    rows = max(1, min(max(rows, -(-least // tiles_w)), total))
    return max(1, -(-total // -(-total // rows))) if total else 1  # steps of equal size


def _buffer(a: int, columns: int, dtype):
    """(a, columns + _GAP) scratch for the a matrices of V or M, matrix xi in row xi (row-major, its
    first ``columns`` values). Packed back to back they often start a multiple of 4 KiB apart and
    compete for the same cache sets (the a streams are read and written side by side); a 64-byte gap
    between them keeps them apart.

    The transforms get this 2-D array itself, not the (a, C, k) view BLAS gets: with the gap that
    view is not contiguous, and Numba compiles a kernel for a non-contiguous array with strides it
    cannot see, so LLVM vectorises no loop that reads or writes V or M ("cannot identify array
    bounds"). On the 2-D array the matrices' rows are contiguous runs, c * k + p, and those loops
    vectorise."""
    return np.empty((a, columns + _GAP), dtype=dtype)


# Layers whose U is at most this many bytes, with at least two steps per thread, are split between the
# threads by steps, each thread running transform, GEMM and transform on its own run of steps
# (``_thread_steps``); the others step by step, each kernel and GEMM split among the threads. A
# thread that runs its own steps reads back from its own cache the tiles it has just transformed,
# which pays while each thread can read all of U; the layers with one step are not split by tile
# rows, because that would change which columns share a GEMM, and with them the float32 bits (the
# per-layer ratios: benchmarks/RESULTS.md, "Figures moved out of minicnn's docstrings").
ROWS_SPLIT_MAX_U_BYTES = 8 << 20


def _thread_steps(total: int, rows: int) -> list[list[int]] | None:
    """The steps' first tile rows (steps of ``rows`` out of ``total``, as the step-by-step path cuts
    them), dealt out in contiguous runs, one run per thread; None where a thread would get fewer
    than two steps. Each thread runs exactly the step-by-step path's steps, so every GEMM has the
    same columns and every result the same bits, whatever the thread count."""
    starts = list(range(0, total, rows))
    threads = numba.get_num_threads()
    if threads < 2 or len(starts) < 2 * threads:
        return None
    cuts = [len(starts) * i // threads for i in range(threads + 1)]
    return [starts[cuts[i] : cuts[i + 1]] for i in range(threads)]


def _transform(kernel: Transform, shared: bool, count: int):
    """The call of a step's transform over ``count`` channels: shared (True), ``kernel.threaded`` on
    Numba's threads; on one thread of ``gemm.run_parts`` (False), ``kernel.channels`` over all of
    them. Returns a function of the transform's own arguments."""
    if shared:
        return lambda *args: kernel.threaded(*args, numba.get_num_threads())
    return lambda *args: kernel.channels(*args, 0, count)


def _run_steps(total: int, rows: int, step, buffers, split: bool, adjoining: bool) -> None:
    """Run ``step(r0, shared, scratch)`` for the first tile row r0 of every step of ``rows`` out of
    ``total``: each thread its own run of steps where ``split`` (and ``_thread_steps`` finds enough),
    else one after another. ``shared`` says which kernels the step must use: True, the threaded
    transforms and ``gemm.matmul`` (the step has the threads to itself); False, the transforms'
    ``channels`` kernels and ``np.matmul`` (the step runs on one thread of ``gemm.run_parts``).
    ``buffers()`` makes the scratch a step works in, one per thread.

    ``adjoining``: neighbouring steps write to shared rows, so the two steps on either side of a
    boundary between two threads' runs must not run at once. Each thread then runs its run last
    step first, and a thread starts the first step of its run (its last job) only once the thread
    before it has done the last step of its own run (that thread's first job): the two never
    overlap, and in the usual case nobody waits. ``run_adjoint`` says why the order does not
    change the bits.
    """
    runs = _thread_steps(total, rows) if split else None
    done = [threading.Event() for _ in runs or []]  # thread t has done the last step of its run

    def own_run(t, starts):
        scratch = buffers()
        order = starts[::-1] if adjoining else starts
        for i, r0 in enumerate(order):
            if adjoining and t > 0 and i == len(order) - 1:
                done[t - 1].wait()  # set even where that step failed: no thread waits forever
            try:
                step(r0, False, scratch)
            finally:
                if i == 0:
                    done[t].set()

    parts = [functools.partial(own_run, t, run) for t, run in enumerate(runs or [])]
    if runs and gemm.run_parts(parts):
        return
    scratch = buffers()  # no split: every step, in order, on all the threads
    for r0 in range(0, total, rows):
        step(r0, True, scratch)


def run_tiles(x, u, bias, pad: int, tile: int, counts, to_tiles, from_tiles):
    """The driver shared by F(2x2, 3x3) and F(4x4, 3x3) (minicnn/kernels/winograd_f4.py): for each step
    of tile rows, V = to_tiles(x), M[xi] = U[xi] @ V[xi] (one batched GEMM), y = from_tiles(M).
    Small layers (ROWS_SPLIT_MAX_U_BYTES) give each thread a contiguous run of the steps to do on its
    own; the others share every step's kernels and GEMM among the threads. Both give the same bits.

    x (N, C, H, W); u (a, O, C) with a = (tile + 2)^2 transformed positions; tile: output pixels per
    tile side; counts(ho, wo) -> (tiles_h, tiles_w); to_tiles / from_tiles: the ``Transform``s with
    the arguments of ``input_tiles`` / ``output_tiles`` above, which get V's and M's scratch as 2-D
    arrays (``_buffer``). Returns y (N, O, Ho, Wo) in x's dtype.
    """
    n, c, h, w = x.shape
    a, o = u.shape[0], u.shape[1]
    ho, wo = h + 2 * pad - 2, w + 2 * pad - 2
    tiles_h, tiles_w = counts(ho, wo)
    rows = _steps(n * tiles_h, a, c, o, tiles_w)
    bias = np.empty(0, dtype=x.dtype) if bias is None else bias
    y = np.empty((n, o, ho, wo), dtype=x.dtype)
    x = np.ascontiguousarray(x)

    def step(r0, shared, scratch):
        matmul = gemm.matmul if shared else np.matmul  # gemm.matmul: BLAS on one thread per part
        v_buffer, m_buffer = scratch
        r1 = min(r0 + rows, n * tiles_h)
        k = (r1 - r0) * tiles_w
        _transform(to_tiles, shared, c)(x, pad, tiles_h, tiles_w, r0, r1, v_buffer)
        v = v_buffer[:, : c * k].reshape(a, c, k)  # the same memory as BLAS's stack of matrices
        m = m_buffer[:, : o * k].reshape(a, o, k)
        matmul(u, v, out=m)
        _transform(from_tiles, shared, o)(m_buffer, bias, tiles_h, tiles_w, r0, r1, y)

    def buffers():
        return _buffer(a, c * rows * tiles_w, x.dtype), _buffer(a, o * rows * tiles_w, x.dtype)

    _run_steps(n * tiles_h, rows, step, buffers, u.nbytes <= ROWS_SPLIT_MAX_U_BYTES, adjoining=False)
    return y


def run_adjoint(dy, u, pad: int, counts, from_gradient, to_gradient, split_steps: bool = False):
    """The input gradient of ``run_tiles`` with the same u: its adjoint, step for step in reverse.

    Forward, per tile: V = B^T d B, M[xi] = U[xi] @ V[xi], y = A^T M A. Each step is linear, so the
    gradient of <y, dy> with respect to the input goes back through the transposes:

        dM = A dY A^T  (from_gradient)     dV[xi] = U[xi]^T @ dM[xi]     dd = B dV B^T  (to_gradient)

    and dd, a (tile + 2)-square of input pixels per tile, is added into dx where the tiles overlap.
    The GEMMs read the forward's U transposed (BLAS's transpose flag), so backward needs no kernel
    transform of its own, and a layer keeps one U, not two (the transposed convolution with the
    rotated kernel needed its own U: 172 MB more for VGG16 with F(4x4, 3x3)). In exact arithmetic
    this is the transposed convolution; in float32 its error is measured against float64 per VGG16
    layer in tests/engine/test_winograd_f4.py.

    dy (N, O, Ho, Wo); u (a, O, C); pad: the forward's padding; counts, from_gradient, to_gradient:
    as ``tile_counts``, ``OUTPUT_GRADIENT``, ``INPUT_GRADIENT``; split_steps: whether small
    layers may give each thread a run of the steps (as in ``run_tiles``), which keeps the bits only
    where to_gradient adds a single value per call into each dx row it shares with another call
    (F(4x4)'s does; this module's F(2x2) kernel adds every tile, up to four values per pixel, and
    their order would change). Returns dx (N, C, Ho - 2*pad + 2, Wo - 2*pad + 2) in dy's dtype.
    """
    n, o, ho, wo = dy.shape
    a, c = u.shape[0], u.shape[2]
    tiles_h, tiles_w = counts(ho, wo)
    rows = _steps(n * tiles_h, a, c, o, tiles_w)
    dx = np.zeros((n, c, ho - 2 * pad + 2, wo - 2 * pad + 2), dtype=dy.dtype)
    dy, ut = np.ascontiguousarray(dy), u.transpose(0, 2, 1)

    def step(r0, shared, scratch):
        matmul = gemm.matmul if shared else np.matmul
        g_buffer, e_buffer = scratch
        r1 = min(r0 + rows, n * tiles_h)
        k = (r1 - r0) * tiles_w
        _transform(from_gradient, shared, o)(dy, tiles_h, tiles_w, r0, r1, g_buffer)
        g = g_buffer[:, : o * k].reshape(a, o, k)
        e = e_buffer[:, : c * k].reshape(a, c, k)
        matmul(ut, g, out=e)
        _transform(to_gradient, shared, c)(e_buffer, pad, tiles_h, tiles_w, r0, r1, dx)

    def buffers():
        return _buffer(a, o * rows * tiles_w, dy.dtype), _buffer(a, c * rows * tiles_w, dy.dtype)

    # Split as in run_tiles, but neighbouring steps add into two shared rows of dx, so two threads must
    # not do neighbouring steps at once (``adjoining``), and a thread runs its own steps last first.
    # Either way a shared row gets the same two addends onto zero, in one order or the other, and
    # a + b is b + a in floating point: the same bits as step by step.
    split = split_steps and u.nbytes <= ROWS_SPLIT_MAX_U_BYTES
    _run_steps(n * tiles_h, rows, step, buffers, split, adjoining=True)
    return dx
