"""The naive reference: convolution and max-pooling as direct nested loops, in float64.

The third oracle beside finite differences and PyTorch (STYLE.md, "three oracles"; CS231n keeps its
``conv_forward_naive`` for the same reason). Every function is the textbook formula written out one
index at a time, with no lowering, no padding copy and no vectorisation, so that it can be checked by
reading it. It is slow: keep the shapes small.

Conventions (the engine's): activations NCHW, convolution weights OIHW, zero padding, cross-correlation
(the kernel is not flipped). Max-pool windows are 'valid' (no padding); the switch of an output is
``ky * kw + kx``, the offset of its maximum inside the window, and the FIRST maximum in row-major
order wins a tie (Zeiler & Fergus 2013, sec. 2.1, call the recorded positions "switches").
"""

from __future__ import annotations

import numpy as np


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Number of window positions along one axis: floor((size + 2 * padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def conv2d_forward(x, w, b, stride: int, padding: int):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) -> y (N, O, Ho, Wo) float64, where

    y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x[n, c, i*s - p + u, j*s - p + v]

    with s = stride, p = padding, and x read as zero outside its H x W extent (zero padding).
    """
    n_, c_, h, wd = x.shape
    o_, _, kh, kw = w.shape
    ho, wo = out_size(h, kh, stride, padding), out_size(wd, kw, stride, padding)
    y = np.zeros((n_, o_, ho, wo))
    for n in range(n_):
        for o in range(o_):
            for i in range(ho):
                for j in range(wo):
                    total = float(b[o])
                    for c in range(c_):
                        for u in range(kh):
                            for v in range(kw):
                                r, q = i * stride - padding + u, j * stride - padding + v
                                if 0 <= r < h and 0 <= q < wd:  # else a padding zero: adds nothing
                                    total += float(w[o, c, u, v]) * float(x[n, c, r, q])
                    y[n, o, i, j] = total
    return y


def conv2d_backward(dy, x, w, stride: int, padding: int):
    """dy (N, O, Ho, Wo), x (N, C, H, W), w (O, C, kh, kw) -> (dx, dw, db) float64, shaped like x, w, (O,).

    The derivative of ``conv2d_forward``'s formula term by term: each product
    w[o, c, u, v] * x[n, c, r, q] that fed y[n, o, i, j] sends dy[n, o, i, j] * w[o, c, u, v] to
    dx[n, c, r, q] and dy[n, o, i, j] * x[n, c, r, q] to dw[o, c, u, v]; the bias sends dy to db[o].
    Padding positions are not inputs, so nothing is sent to them.
    """
    n_, c_, h, wd = x.shape
    o_, _, kh, kw = w.shape
    _, _, ho, wo = dy.shape
    dx, dw, db = np.zeros(x.shape), np.zeros(w.shape), np.zeros(o_)
    for n in range(n_):
        for o in range(o_):
            for i in range(ho):
                for j in range(wo):
                    g = float(dy[n, o, i, j])
                    db[o] += g
                    for c in range(c_):
                        for u in range(kh):
                            for v in range(kw):
                                r, q = i * stride - padding + u, j * stride - padding + v
                                if 0 <= r < h and 0 <= q < wd:
                                    dx[n, c, r, q] += g * float(w[o, c, u, v])
                                    dw[o, c, u, v] += g * float(x[n, c, r, q])
    return dx, dw, db


def maxpool_forward(x, kh: int, kw: int, stride: int):
    """x (N, C, H, W) -> (y (N, C, Ho, Wo) float64, switches (N, C, Ho, Wo) int64).

    y[n, c, i, j] = max_{ky < kh, kx < kw} x[n, c, i*stride + ky, j*stride + kx], and the switch is
    ky * kw + kx of the first maximum met in row-major order (a later equal value does not replace it).
    """
    n_, c_, h, wd = x.shape
    ho, wo = out_size(h, kh, stride, 0), out_size(wd, kw, stride, 0)
    y, switches = np.zeros((n_, c_, ho, wo)), np.zeros((n_, c_, ho, wo), np.int64)
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    best, where = None, None
                    for ky in range(kh):
                        for kx in range(kw):
                            value = float(x[n, c, i * stride + ky, j * stride + kx])
                            if best is None or value > best:  # strictly greater: the first maximum wins
                                best, where = value, ky * kw + kx
                    y[n, c, i, j], switches[n, c, i, j] = best, where
    return y, switches


def maxpool_backward(dy, switches, input_shape, kw: int, stride: int):
    """dy (N, C, Ho, Wo), switches (N, C, Ho, Wo) -> dx (input_shape) float64.

    Each dy[n, c, i, j] goes to the input position its switch names (ky, kx = divmod(switch, kw));
    overlapping windows (stride < kernel) whose switches name the same position add up there.
    """
    n_, c_, ho, wo = dy.shape
    dx = np.zeros(input_shape)
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    ky, kx = divmod(int(switches[n, c, i, j]), kw)
                    dx[n, c, i * stride + ky, j * stride + kx] += float(dy[n, c, i, j])
    return dx
