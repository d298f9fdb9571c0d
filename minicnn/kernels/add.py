"""The elementwise sum of a residual block's branches (CPU: Numba, GPU: CuPy's own operators).

    y = (...((x_1 + x_2) + x_3) + ...) + x_k        then max(y, 0) where ``rectify``

NumPy's ``x_1 + x_2`` runs on one thread and a ReLU after it reads the sum again; here each element
is read once and written once, on every core for large arrays and on the calling thread for the
others (minicnn/kernels/threads.py: ``sized``). The terms are added in the order written above,
each sum rounded to the arrays' dtype as NumPy rounds it, and the ReLU is the expression of
minicnn/kernels/relu.py (``v if v > 0 else 0``), so the bits are those of NumPy's sum followed by
the ReLU layer.
"""

from __future__ import annotations

import numba
import numpy as np

from minicnn.backend import get_xp
from minicnn.kernels import relu
from minicnn.kernels.compiled import njit
from minicnn.kernels.threads import sized


@njit(parallel=True)
def _add_cpu(a, b, y, rectify):
    # one loop per flag: the flag is constant over the array, so it is tested once, not per element
    if rectify:
        for i in numba.prange(y.size):
            v = a[i] + b[i]
            y[i] = v if v > 0 else 0.0
    else:
        for i in numba.prange(y.size):
            y[i] = a[i] + b[i]


def add(xs, rectify: bool = False):
    """xs: a tuple of k >= 2 arrays of one shape and dtype (N, ...) -> their sum, a new array of that
    shape (max(sum, 0) where ``rectify``). No input is written."""
    xp = get_xp(xs[0])
    if xp is not np:
        y = xs[0] + xs[1]
        for x in xs[2:]:
            y += x
        return relu.rectify_in_place(y) if rectify else y
    a, b = np.ascontiguousarray(xs[0]), np.ascontiguousarray(xs[1])
    y = np.empty_like(a)
    last = len(xs) == 2
    sized(_add_cpu, y.size)(a.reshape(-1), b.reshape(-1), y.reshape(-1), rectify and last)
    for i, x in enumerate(xs[2:], start=3):
        flat = y.reshape(-1)  # y += x_i, in place: y is this function's own array
        sized(_add_cpu, y.size)(flat, np.ascontiguousarray(x).reshape(-1), flat, rectify and i == len(xs))
    return y
