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
from minicnn.kernels.compiled import njit


@njit
def _valid_span(wo, stride, pad, kj, w):
    """Output columns [t0, t1) whose input column ix = t * stride - pad + kj lies inside [0, w);
    the others read the zero padding."""
    t0 = max(0, -((kj - pad) // stride))  # ceil((pad - kj) / stride)
    t1 = min(wo, (w - 1 + pad - kj) // stride + 1) if w - 1 + pad - kj >= 0 else 0
    return t0, max(t0, t1)


@njit(parallel=True)
def _im2col_cpu(x, n, kh, kw, stride, pad, wo, oy0, oy1, cols):
    """Fill cols (C*kh*kw, (oy1-oy0)*wo) with the patches of image n of x (N, C, H, W) for the
    output rows [oy0, oy1)."""
    c_in, h, w = x.shape[1], x.shape[2], x.shape[3]
    # One parallel task per row of cols: each thread writes one contiguous row, so writes never
    # collide and stream through memory in order. Along an output row, a patch row reads one input
    # row: a plain copy when stride is 1, with zeros where it hangs over the padding.
    for r in numba.prange(c_in * kh * kw):
        c = r // (kh * kw)
        ki = (r // kw) % kh
        kj = r % kw
        t0, t1 = _valid_span(wo, stride, pad, kj, w)
        for oy in range(oy0, oy1):
            j = (oy - oy0) * wo
            iy = oy * stride - pad + ki
            if iy < 0 or iy >= h:
                cols[r, j : j + wo] = 0.0
                continue
            cols[r, j : j + t0] = 0.0
            ix = t0 * stride - pad + kj
            for t in range(t0, t1):
                cols[r, j + t] = x[n, c, iy, ix]
                ix += stride
            cols[r, j + t1 : j + wo] = 0.0


@njit(parallel=True)
def _col2im_cpu(cols, n, kh, kw, stride, pad, wo, oy0, oy1, dx):
    """Add cols (C*kh*kw, (oy1-oy0)*wo) back into image n of dx (N, C, H, W); the adjoint of
    _im2col_cpu."""
    c_in, h, w = dx.shape[1], dx.shape[2], dx.shape[3]
    # Parallel over input channels: the rows of channel c only ever touch dx[n, c], so no two
    # threads add into the same element (overlapping windows are summed inside one thread).
    for c in numba.prange(c_in):
        for ki in range(kh):
            for kj in range(kw):
                r = (c * kh + ki) * kw + kj
                t0, t1 = _valid_span(wo, stride, pad, kj, w)
                for oy in range(oy0, oy1):
                    iy = oy * stride - pad + ki
                    if 0 <= iy < h:
                        j = (oy - oy0) * wo
                        ix = t0 * stride - pad + kj
                        for t in range(t0, t1):
                            dx[n, c, iy, ix] += cols[r, j + t]
                            ix += stride


def _rows(q0: int, q1: int, ho: int, wo: int):
    """(image, oy0, oy1) of a tile of output pixels [q0, q1) that covers whole rows of one image."""
    p = ho * wo
    n, oy0 = divmod(q0, p)
    oy0, rem = divmod(oy0, wo)
    oy1 = oy0 + (q1 - q0) // wo
    if rem or (q1 - q0) % wo or oy1 > ho:
        raise ValueError("CPU im2col tiles must cover whole output rows of one image")
    return n, oy0, oy1


def im2col(x, kh: int, kw: int, stride: int, pad: int, ho: int, wo: int, q0: int, q1: int, out):
    """Write the patches of x (N, C, H, W) for output pixels [q0, q1) into out (C*kh*kw, q1-q0)."""
    if get_xp(x) is np:
        n, oy0, oy1 = _rows(q0, q1, ho, wo)
        _im2col_cpu(x, n, kh, kw, stride, pad, wo, oy0, oy1, out)
    else:
        from minicnn.kernels import gpu

        gpu.im2col(x, kh, kw, stride, pad, ho, wo, q0, q1, out)
    return out


def col2im(cols, kh: int, kw: int, stride: int, pad: int, ho: int, wo: int, q0: int, q1: int, dx):
    """Add cols (C*kh*kw, q1-q0), the columns of output pixels [q0, q1), into dx (N, C, H, W)."""
    if get_xp(cols) is np:
        n, oy0, oy1 = _rows(q0, q1, ho, wo)
        _col2im_cpu(cols, n, kh, kw, stride, pad, wo, oy0, oy1, dx)
    else:
        from minicnn.kernels import gpu

        gpu.col2im(cols, kh, kw, stride, pad, ho, wo, q0, q1, dx)
    return dx
