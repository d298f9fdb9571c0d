"""Max-pooling with switches: forward records where each maximum came from, backward routes through it.

The switch of an output is the flat offset ``ky * kw + kx`` of its maximum inside the pooling window
(Chainer's convention). DeconvNet "unpooling" (Zeiler & Fergus 2013, sec. 2.1) and the gradient of
max-pooling are the same operation: put each output's signal back at its switch, zeros elsewhere.
Ties go to the first maximum in raster order, so results are deterministic.

VGG's pooling (2x2 windows at stride 2) has kernels of its own: the window unrolled, so the
compiler keeps it in registers and vectorises across outputs (the general loops over a window of
any size do not), and a backward that writes every input once (the windows tile the input) instead
of zeroing dx and then scattering into it, which halves its memory traffic. Both give the general
kernels' results exactly (tests/engine/test_naive_reference.py).
Below minicnn/kernels/threads.py's size they run on the calling thread (waking Numba's threads
costs more than the loop).
"""

from __future__ import annotations

import numba
import numpy as np

from minicnn.backend import get_xp
from minicnn.geometry import output_size
from minicnn.kernels.compiled import njit
from minicnn.kernels.threads import sized


@njit(parallel=True)
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


@njit(parallel=True)
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


@njit(parallel=True)
def _maxpool2_forward_cpu(x, y, switches):
    """The 2x2, stride 2 case of _maxpool_forward_cpu: the window unrolled, the same comparisons in
    the same order (so the same ties and the same NaN handling), two input rows per output row."""
    n_img, c_in, ho, wo = y.shape
    for nc in numba.prange(n_img * c_in):
        n = nc // c_in
        c = nc % c_in
        for oy in range(ho):
            top, bottom = x[n, c, 2 * oy], x[n, c, 2 * oy + 1]
            out, switch = y[n, c, oy], switches[n, c, oy]
            for ox in range(wo):
                best, arg = top[2 * ox], 0
                v = top[2 * ox + 1]
                if v > best:
                    best, arg = v, 1
                v = bottom[2 * ox]
                if v > best:
                    best, arg = v, 2
                v = bottom[2 * ox + 1]
                if v > best:
                    best, arg = v, 3
                out[ox] = best
                switch[ox] = arg


@njit(parallel=True)
def _maxpool2_backward_cpu(dy, switches, dx):
    """The 2x2, stride 2 case of _maxpool_backward_cpu, writing every element of dx once: each window
    gets dy at its switch and zeros elsewhere, and the last row / column that no window reads (odd
    sides) gets zeros. dx may hold anything on entry (np.empty)."""
    n_img, c_in, ho, wo = dy.shape
    h, w = dx.shape[2], dx.shape[3]
    zero = dx.dtype.type(0)
    for nc in numba.prange(n_img * c_in):
        n = nc // c_in
        c = nc % c_in
        for oy in range(ho):
            top, bottom = dx[n, c, 2 * oy], dx[n, c, 2 * oy + 1]
            signal, switch = dy[n, c, oy], switches[n, c, oy]
            for ox in range(wo):
                s, v = switch[ox], signal[ox]
                top[2 * ox] = v if s == 0 else zero
                top[2 * ox + 1] = v if s == 1 else zero
                bottom[2 * ox] = v if s == 2 else zero
                bottom[2 * ox + 1] = v if s == 3 else zero
            for k in range(2 * wo, w):
                top[k] = zero
                bottom[k] = zero
        for k in range(2 * ho, h):
            dx[n, c, k, :] = zero


def _is_vgg_pool(kh: int, kw: int, stride: int) -> bool:
    """2x2 windows at stride 2: the case with kernels of its own (see the module docstring)."""
    return kh == 2 and kw == 2 and stride == 2


def maxpool_forward(x, kh: int, kw: int, stride: int):
    """x (N, C, H, W) -> (y (N, C, Ho, Wo), switches int32 (N, C, Ho, Wo)).

    Ho = output_size(H, kh, stride, 0) ('valid' windows), likewise Wo."""
    xp = get_xp(x)
    n, c, h, w = x.shape
    ho, wo = output_size(h, kh, stride, 0), output_size(w, kw, stride, 0)
    y = xp.empty((n, c, ho, wo), dtype=x.dtype)
    switches = xp.empty((n, c, ho, wo), dtype=np.int32)
    if xp is np and _is_vgg_pool(kh, kw, stride):
        sized(_maxpool2_forward_cpu, x.size)(x, y, switches)
    elif xp is np:
        sized(_maxpool_forward_cpu, x.size)(x, kh, kw, stride, y, switches)
    else:
        from minicnn.kernels import gpu

        gpu.maxpool_forward(x, kh, kw, stride, y, switches)
    return y, switches


def maxpool_backward(dy, switches, input_shape, kh: int, kw: int, stride: int):
    """Route dy (N, C, Ho, Wo) through the switches into dx of ``input_shape`` (N, C, H, W)."""
    xp = get_xp(dy)
    if xp is np and _is_vgg_pool(kh, kw, stride):
        dx = np.empty(input_shape, dtype=dy.dtype)  # every element written by the kernel
        sized(_maxpool2_backward_cpu, dx.size)(dy, switches, dx)
        return dx
    dx = xp.zeros(input_shape, dtype=dy.dtype)
    if xp is np:
        sized(_maxpool_backward_cpu, dx.size)(dy, switches, kw, stride, dx)
    else:
        from minicnn.kernels import gpu

        gpu.maxpool_backward(dy, switches, kh, kw, stride, dx)
    return dx
