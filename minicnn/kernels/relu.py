"""The three ReLU backward rules as one fused pass (CPU: Numba, GPU: minicnn.kernels.gpu).

NumPy would need a boolean temporary and a ``where`` per rule; here each element is read once and
written once, on every core for large arrays and on the calling thread for the others (where
waking Numba's threads costs more than the loop: minicnn/kernels/threads.py). The rules are stated
in minicnn/layers/relu.py.
"""

from __future__ import annotations

import numba
import numpy as np

from minicnn.backend import get_xp
from minicnn.kernels.threads import sized

_RULES = {"gradient": 0, "deconvnet": 1, "guided": 2}


@numba.njit(parallel=True, cache=True)
def _relu_backward_cpu(dy, y, rule, dx):
    for i in numba.prange(dy.size):
        g = dy[i]
        if rule == 0:
            dx[i] = g if y[i] > 0 else 0.0
        elif rule == 1:
            dx[i] = g if g > 0 else 0.0
        else:
            dx[i] = g if (g > 0 and y[i] > 0) else 0.0


@numba.njit(parallel=True, cache=True)
def _relu_forward_cpu(x, y):
    for i in numba.prange(x.size):
        v = x[i]
        y[i] = v if v > 0 else 0.0


def relu_forward(x):
    """max(x, 0), any shape."""
    if get_xp(x) is not np:
        return get_xp(x).maximum(x, 0)
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    sized(_relu_forward_cpu, x.size)(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(dy, y, mode: str):
    """dx for signal dy and forward output y (same shape) under ``mode``'s rule."""
    if get_xp(dy) is not np:
        from minicnn.kernels import gpu

        return gpu.relu_backward(dy, y, mode)
    dy, y = np.ascontiguousarray(dy), np.ascontiguousarray(y)
    dx = np.empty_like(dy)
    sized(_relu_backward_cpu, dy.size)(dy.reshape(-1), y.reshape(-1), _RULES[mode], dx.reshape(-1))
    return dx
