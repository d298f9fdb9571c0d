"""The input gradient of a dense layer for one image, reading only the rows of W that it needs.

    dx (1, In) = dy (1, Out) @ W (Out, In) = sum over j with dy[j] != 0 of dy[j] * W[j, :]

Behind a ReLU most of dy is exactly zero (the units that were off pass no gradient; a class score's
signal is one-hot): about half of the units of a randomly initialised VGG16's fc1 and fc2, more in
a trained one. A row whose dy[j] is zero adds dy[j] * W[j, :] = +-0 to every element, which changes
no sum, so leaving it out changes only the time. That time is memory: VGG16's fc1 holds 411 MB
(4096 x 25088 float32), and BLAS's product reads all of it whatever dy holds, where this kernel
reads only the rows that a nonzero dy[j] selects, so its time falls with dy's density (the figures
at 10-50%: benchmarks/RESULTS.md, "Figures moved out of minicnn's docstrings"). Above
SPARSE_MAX_DENSITY nonzero values, or for more than one image (where the rows that some image needs
are nearly all of them), BLAS does the product (minicnn/kernels/gemm.py).

Rounding: the sum runs over the rows in ascending order, four rows per pass over dx; BLAS adds in
another order. Against float64 on the same operands both err by the same few float32 roundings
(7.7e-7 and 6.6e-7 of the largest value at 50% density; tests/engine/test_dense_rows.py).
"""

from __future__ import annotations

import numba
import numpy as np

from minicnn.backend import get_xp
from minicnn.kernels import gemm
from minicnn.kernels.compiled import njit

# The share of nonzero values in dy up to which rows are skipped: at 50% the loop took 0.66x BLAS's
# time; its time grows with the rows it reads, BLAS's does not.
SPARSE_MAX_DENSITY = 0.6


@njit(parallel=True)
def _rows_product(g, rows, w, dx, parts):
    """dx[:] = sum over j in ``rows`` (ascending) of g[j] * w[j, :]: g (Out,), rows int64 (the j with
    g[j] != 0), w (Out, In) C-contiguous, dx (In,); parts: Numba's thread count (passed in: read
    inside, it would keep the kernel out of Numba's on-disk cache). Each part owns a run of dx's
    columns and reads those columns of the rows, four rows per pass over its run, so that the run
    is read and written a quarter as often."""
    n, m = w.shape[1], rows.size
    for part in numba.prange(parts):
        c0, c1 = n * part // parts, n * (part + 1) // parts
        acc = dx[c0:c1]
        acc[:] = 0.0
        i = 0
        while i + 4 <= m:
            j0, j1, j2, j3 = rows[i], rows[i + 1], rows[i + 2], rows[i + 3]
            s0, s1, s2, s3 = g[j0], g[j1], g[j2], g[j3]
            r0, r1, r2, r3 = w[j0, c0:c1], w[j1, c0:c1], w[j2, c0:c1], w[j3, c0:c1]
            for q in range(c1 - c0):
                acc[q] += s0 * r0[q] + s1 * r1[q] + s2 * r2[q] + s3 * r3[q]
            i += 4
        while i < m:
            j = rows[i]
            s, r = g[j], w[j, c0:c1]
            for q in range(c1 - c0):
                acc[q] += s * r[q]
            i += 1


def input_gradient(dy, w):
    """dy (N, Out) @ w (Out, In) -> dx (N, In) in dy's dtype: the rows of w that dy selects where N is 1
    on the CPU, w is C-contiguous and few of dy's values are nonzero, else the full product
    (gemm.product)."""
    # W is read in place or not at all: a C-contiguous copy of fc1 would cost more than the product.
    if get_xp(dy) is not np or dy.shape[0] != 1 or w.dtype != dy.dtype or not w.flags.c_contiguous:
        return gemm.product(dy, w)
    g = np.ascontiguousarray(dy[0])
    rows = np.flatnonzero(g)
    if rows.size > SPARSE_MAX_DENSITY * g.size:
        return gemm.product(dy, w)
    dx = np.empty((1, w.shape[1]), dtype=dy.dtype)
    _rows_product(g, rows, w, dx[0], numba.get_num_threads())
    return dx
