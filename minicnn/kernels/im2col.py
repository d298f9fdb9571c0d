"""im2col / col2im: the data movement that lowers a convolution to one matrix product.

A convolution of x (N, C, H, W) with w (O, C, kh, kw) is, for every output pixel q = (n, oy, ox),
a dot product of w[o] with the (C, kh, kw) patch of x under that pixel. Writing those patches as the
columns of a matrix ``cols`` (C*kh*kw, N*Ho*Wo) turns the whole layer into one GEMM,
``y = w.reshape(O, -1) @ cols``, which BLAS runs near the machine's peak.

To bound memory (a 224x224x64 layer would need 115 MB of columns per image) the column matrix is
built for a range [q0, q1) of output pixels at a time; the caller tiles over q.

col2im is the adjoint: it scatters-and-adds columns back into image space, which is exactly the
input gradient of a convolution (``dx = col2im(w.reshape(O, -1).T @ dy)``).
"""

from __future__ import annotations

import numba
import numpy as np

from minicnn.backend import get_xp


@numba.njit(parallel=True, cache=True, fastmath=False)
def _im2col_cpu(x, kh, kw, stride, pad, ho, wo, q0, q1, cols):
    """Fill cols (C*kh*kw, q1-q0) with the patches of x (N, C, H, W) for output pixels [q0, q1)."""
    n_img, c_in, h, w = x.shape
    p = ho * wo
    # One parallel task per row of cols: each thread writes one contiguous row, so writes never
    # collide and stream through memory in order.
    for r in numba.prange(c_in * kh * kw):
        c = r // (kh * kw)
        ki = (r // kw) % kh
        kj = r % kw
        n = q0 // p
        oy = (q0 % p) // wo
        ox = q0 % wo
        for j in range(q1 - q0):
            iy = oy * stride - pad + ki
            ix = ox * stride - pad + kj
            if 0 <= iy < h and 0 <= ix < w:
                cols[r, j] = x[n, c, iy, ix]
            else:
                cols[r, j] = 0.0
            ox += 1
            if ox == wo:
                ox = 0
                oy += 1
                if oy == ho:
                    oy = 0
                    n += 1


@numba.njit(parallel=True, cache=True, fastmath=False)
def _col2im_cpu(cols, kh, kw, stride, pad, ho, wo, q0, q1, dx):
    """Add cols (C*kh*kw, q1-q0) back into dx (N, C, H, W); the adjoint of _im2col_cpu."""
    n_img, c_in, h, w = dx.shape
    p = ho * wo
    # Parallel over input channels: the rows of channel c only ever touch dx[:, c], so no two
    # threads add into the same element (overlapping windows are summed inside one thread).
    for c in numba.prange(c_in):
        for ki in range(kh):
            for kj in range(kw):
                r = (c * kh + ki) * kw + kj
                n = q0 // p
                oy = (q0 % p) // wo
                ox = q0 % wo
                for j in range(q1 - q0):
                    iy = oy * stride - pad + ki
                    ix = ox * stride - pad + kj
                    if 0 <= iy < h and 0 <= ix < w:
                        dx[n, c, iy, ix] += cols[r, j]
                    ox += 1
                    if ox == wo:
                        ox = 0
                        oy += 1
                        if oy == ho:
                            oy = 0
                            n += 1


def im2col(x, kh: int, kw: int, stride: int, pad: int, ho: int, wo: int, q0: int, q1: int, out):
    """Write the patches of x (N, C, H, W) for output pixels [q0, q1) into out (C*kh*kw, q1-q0)."""
    if get_xp(x) is np:
        _im2col_cpu(x, kh, kw, stride, pad, ho, wo, q0, q1, out)
    else:
        from minicnn.kernels import gpu

        gpu.im2col(x, kh, kw, stride, pad, ho, wo, q0, q1, out)
    return out


def col2im(cols, kh: int, kw: int, stride: int, pad: int, ho: int, wo: int, q0: int, q1: int, dx):
    """Add cols (C*kh*kw, q1-q0), the columns of output pixels [q0, q1), into dx (N, C, H, W)."""
    if get_xp(cols) is np:
        _col2im_cpu(cols, kh, kw, stride, pad, ho, wo, q0, q1, dx)
    else:
        from minicnn.kernels import gpu

        gpu.col2im(cols, kh, kw, stride, pad, ho, wo, q0, q1, dx)
    return dx
