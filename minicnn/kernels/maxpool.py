"""Max-pooling with switches: forward records where each maximum came from, backward routes through it.

The switch of an output is the flat offset ``ky * kw + kx`` of its maximum inside the pooling window
(Chainer's convention). DeconvNet "unpooling" (Zeiler & Fergus 2013, sec. 2.1) and the gradient of
max-pooling are the same operation: put each output's signal back at its switch, zeros elsewhere.
Ties go to the first maximum in raster order, so results are deterministic.
"""

from __future__ import annotations

import numba
import numpy as np

from minicnn.backend import get_xp
from minicnn.geometry import output_size


@numba.njit(parallel=True, cache=True)
def _maxpool_forward_cpu(x, kh, kw, stride, y, switches):
    n_img, c_in, ho, wo = y.shape
    for nc in numba.prange(n_img * c_in):
        n = nc // c_in
        c = nc % c_in
        for oy in range(ho):
            for ox in range(wo):
                y0 = oy * stride
                x0 = ox * stride
                best = x[n, c, y0, x0]
                arg = 0
                for ky in range(kh):
                    for kx in range(kw):
                        v = x[n, c, y0 + ky, x0 + kx]
                        if v > best:  # strict: the first maximum wins ties
                            best = v
                            arg = ky * kw + kx
                y[n, c, oy, ox] = best
                switches[n, c, oy, ox] = arg


@numba.njit(parallel=True, cache=True)
def _maxpool_backward_cpu(dy, switches, kw, stride, dx):
    n_img, c_in, ho, wo = dy.shape
    for nc in numba.prange(n_img * c_in):
        n = nc // c_in
        c = nc % c_in
        for oy in range(ho):
            for ox in range(wo):
                s = switches[n, c, oy, ox]
                # += because overlapping windows (stride < kernel) can share an argmax
                dx[n, c, oy * stride + s // kw, ox * stride + s % kw] += dy[n, c, oy, ox]


def maxpool_forward(x, kh: int, kw: int, stride: int):
    """x (N, C, H, W) -> (y (N, C, Ho, Wo), switches int32 (N, C, Ho, Wo)).

    Ho = output_size(H, kh, stride, 0) ('valid' windows), likewise Wo."""
    xp = get_xp(x)
    n, c, h, w = x.shape
    ho, wo = output_size(h, kh, stride, 0), output_size(w, kw, stride, 0)
    y = xp.empty((n, c, ho, wo), dtype=x.dtype)
    switches = xp.empty((n, c, ho, wo), dtype=np.int32)
    if xp is np:
        _maxpool_forward_cpu(x, kh, kw, stride, y, switches)
    else:
        from minicnn.kernels import gpu

        gpu.maxpool_forward(x, kh, kw, stride, y, switches)
    return y, switches


def maxpool_backward(dy, switches, input_shape, kh: int, kw: int, stride: int):
    """Route dy (N, C, Ho, Wo) through the switches into dx of ``input_shape`` (N, C, H, W)."""
    xp = get_xp(dy)
    dx = xp.zeros(input_shape, dtype=dy.dtype)
    if xp is np:
        _maxpool_backward_cpu(dy, switches, kw, stride, dx)
    else:
        from minicnn.kernels import gpu

        gpu.maxpool_backward(dy, switches, kh, kw, stride, dx)
    return dx
