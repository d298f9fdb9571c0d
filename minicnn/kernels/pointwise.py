"""1x1 convolutions as plain matrix products on the input's own memory: no column matrix.

With a 1x1 kernel and no padding, output pixel (i, j) reads the single input pixel (i*s, j*s), so

    y[n, :, i, j] = W @ x[n, :, i*s, j*s] + b          W = w.reshape(O, C)

and for stride 1 the (C, H*W) view of each image is already im2col's column matrix. The layer is
one GEMM per image, ``y[n] (O, H*W) = W (O, C) @ x[n] (C, H*W)``, read and written in NCHW order
(im2col would copy x into the same matrix first). For stride s > 1 the pixels read are the grid
x[:, :, ::s, ::s]: copied once into a contiguous (N, C, Ho, Wo) array (1/s^2 of the input), then the
same product.

Backward is the transpose, image by image:

    dx[n] (C, Ho*Wo) = W^T @ dy[n]         (stride 1: dx itself; stride s: scattered into a zero
                                            (N, C, H, W) grid at [::s, ::s], the pixels never read
                                            get zero gradient)
    dW = sum_n dy[n] @ xs[n]^T              db = sum of dy over n, i, j

(xs: the subsampled input, or x for stride 1). The products go through minicnn/kernels/gemm.py (one
set of threads, the stack of images split between them), so this file has no device fork: CuPy
arrays take CuPy's products.
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.kernels import gemm


def fits(w, stride: int, padding: int) -> bool:
    """Whether this lowering applies: a 1x1 kernel w (O, C, 1, 1) and no padding (any stride)."""
    return tuple(w.shape[2:]) == (1, 1) and padding == 0


def _sampled(x, stride: int):
    """x (N, C, H, W) -> the pixels a stride-``stride`` 1x1 kernel reads, (N, C, Ho, Wo), contiguous
    (x itself, made contiguous, for stride 1)."""
    xp = get_xp(x)
    return xp.ascontiguousarray(x if stride == 1 else x[:, :, ::stride, ::stride])


def forward(x, w, b, stride: int, rectify: bool = False):
    """x (N, C, H, W), w (O, C, 1, 1), b (O,) -> y (N, O, Ho, Wo), Ho = (H - 1) // stride + 1;
    rectify: max(y, 0) instead, applied with the bias (gemm.product)."""
    xp = get_xp(x)
    xs = _sampled(x, stride)
    n, c, ho, wo = xs.shape
    o = w.shape[0]
    y = xp.empty((n, o, ho * wo), dtype=x.dtype)
    # one product per image (a stack against the shared W), the bias added while each is in cache
    gemm.product(w.reshape(o, c), xs.reshape(n, c, ho * wo), y, bias=b, rectify=rectify)
    return y.reshape(n, o, ho, wo)


def backward(dy, x, w, stride: int, need_params: bool = False):
    """dy (N, O, Ho, Wo), the forward's input x (N, C, H, W) and w (O, C, 1, 1) -> (dx (N, C, H, W),
    dw (O, C, 1, 1) or None, db (O,) or None)."""
    xp = get_xp(dy)
    n, o, ho, wo = dy.shape
    c = w.shape[1]
    w2 = w.reshape(o, c)
    dy3 = xp.ascontiguousarray(dy).reshape(n, o, ho * wo)
    if stride == 1:
        dx = xp.empty(x.shape, dtype=dy.dtype)
        gemm.product(w2.T, dy3, dx.reshape(n, c, ho * wo))
    else:
        sampled = gemm.product(w2.T, dy3)  # (N, C, Ho*Wo): the gradient at the pixels read
        dx = xp.zeros(x.shape, dtype=dy.dtype)
        dx[:, :, ::stride, ::stride] = sampled.reshape(n, c, ho, wo)
    if not need_params:
        return dx, None, None
    xs = _sampled(x, stride).reshape(n, c, ho * wo)
    dw2 = xp.zeros((o, c), dtype=dy.dtype)
    for image in range(n):
        dw2 += gemm.product(dy3[image], xs[image].T)
    return dx, dw2.reshape(w.shape), dy3.sum(axis=(0, 2))
