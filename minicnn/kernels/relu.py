"""ReLU forward and the ReLU backward as one fused pass (CPU: Numba, GPU: minicnn.kernels.gpu).

The forward also runs in place on a producer's fresh output (``rectify_in_place``, and
``add_bias_rectify`` as a convolution tile's epilogue: its bias and the ReLU in one pass while the
tile is in cache), for passes that keep no pre-ReLU output (minicnn/fusion.py). Every rectified
element is computed as ``v if v > 0 else 0``, the same expression as ``relu_forward``, so the fused
pass gives the same bits as the layer after it would (NumPy's ``maximum`` would keep NaN).

NumPy would need a boolean temporary and a ``where`` per rule; here each element is read once and
written once, on every core for large arrays and on the calling thread for the others (where
waking Numba's threads costs more than the loop: minicnn/kernels/threads.py).

The kernel knows two masks, not the backward rules' names: ``mask_forward`` keeps dy where the
forward output y > 0, ``rectify`` keeps dy where dy > 0. y is the forward output or its mask y > 0
as booleans (a pass with keep="input-gradient" keeps it packed: SignBits); True > 0 and
False > 0 read the same mask, so both give the same bits. Which rule uses which masks is the ReLU
layer's business (minicnn/layers/relu.py); the rules are named in minicnn/rules.py.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from minicnn.backend import get_xp
from minicnn.kernels.compiled import njit
from minicnn.kernels.threads import sized


class SignBits(NamedTuple):
    """The mask y > 0 of a ReLU output y, packed eight values to a byte (``pack_signs``)."""

    bits: object  # uint8 (ceil(y.size / 8),): NumPy's packbits order, first value in the high bit
    shape: tuple  # y's shape


# Values packed at a time: the bool temporary y > 0 stays this small beside y (a forward pass's peak
# is at its first ReLUs, where y and the convolution output it came from are both alive).
PACK_CHUNK = 1 << 20  # a multiple of 8, so that each chunk fills whole bytes


def pack_signs(y) -> SignBits:
    """The mask y > 0 of y (any shape, on either device) as bits: a 32nd of a float32 y."""
    xp = get_xp(y)
    flat = y.reshape(-1)
    bits = xp.empty(-(-flat.size // 8), dtype=np.uint8)
    for start in range(0, flat.size, PACK_CHUNK):
        packed = xp.packbits(flat[start : start + PACK_CHUNK] > 0)
        bits[start // 8 : start // 8 + packed.size] = packed
    return SignBits(bits, tuple(y.shape))


def unpack_signs(signs: SignBits):
    """``pack_signs``'s mask again: bool of ``signs.shape``."""
    xp = get_xp(signs.bits)
    size = int(np.prod(signs.shape))
    return xp.unpackbits(signs.bits)[:size].view(bool).reshape(signs.shape)


@njit(parallel=True)
def _relu_backward_cpu(dy, y, mask_forward, rectify, dx):
    # One loop per pair of masks: the masks are constant over the array, so the test that picks
    # the loop runs once, not per element.
    if mask_forward and not rectify:
        for i in numba.prange(dy.size):
            dx[i] = dy[i] if y[i] > 0 else 0.0
    elif rectify and not mask_forward:
        for i in numba.prange(dy.size):
            g = dy[i]
            dx[i] = g if g > 0 else 0.0
    elif rectify and mask_forward:
        for i in numba.prange(dy.size):
            g = dy[i]
            dx[i] = g if (g > 0 and y[i] > 0) else 0.0
    else:
        for i in numba.prange(dy.size):
            dx[i] = dy[i]


@njit(parallel=True)
def _relu_forward_cpu(x, y):
    for i in numba.prange(x.size):
        v = x[i]
        y[i] = v if v > 0 else 0.0


# In place, ``y[i] = v if v > 0 else 0`` leaves y[i] unchanged where v > 0, so LLVM stores only the
# zeros, with masked vector stores, which AMD's cores run several times slower than plain ones. The
# stored value is written ``v + 0.0`` instead (the same bits: v > 0 is neither -0.0 nor NaN), which
# LLVM may not fold without fast-math, so every element is stored.
@njit(parallel=True)
def _rectify_cpu(y):
    for i in numba.prange(y.size):
        v = y[i]
        y[i] = v + 0.0 if v > 0 else 0.0


@njit(nogil=True)  # runs on the threads of gemm.run_parts, beside other parts
def _add_bias_rectify_cpu(out, bias, has_bias):
    # out: a 2-D view (rows contiguous, any row stride), bias: one value per row, added in the two
    # dtypes' common type as NumPy's ``out += bias`` adds (no float64 zero where there is no bias)
    for r in range(out.shape[0]):
        if has_bias:
            for q in range(out.shape[1]):
                v = out[r, q] + bias[r]
                out[r, q] = v if v > 0 else 0.0
        else:
            for q in range(out.shape[1]):
                v = out[r, q]
                out[r, q] = v + 0.0 if v > 0 else 0.0  # every element stored (see _rectify_cpu)


def rectify_in_place(y):
    """y (any shape) -> y itself, each element replaced by max(v, 0) as relu_forward
    computes it."""
    if get_xp(y) is not np:
        return get_xp(y).maximum(y, 0, out=y)
    if not y.flags.c_contiguous:  # no flat view of y to walk: through a new array
        y[...] = relu_forward(y)
        return y
    flat = y.reshape(-1)  # a view of y's own memory
    sized(_rectify_cpu, flat.size)(flat)
    return y


def add_bias_rectify(out, bias=None):
    """out (M, P) or a stack (B, M, P), rows contiguous (a column slice of a larger matrix is fine),
    bias (M,) or None -> out itself, max(out + bias[:, None], 0) in place: the bias added as
    ``out += bias[:, None]`` adds it (one rounding), then the ReLU, in one pass over the tile."""
    if get_xp(out) is not np:
        if bias is not None:
            out += bias[:, None]
        return get_xp(out).maximum(out, 0, out=out)
    has_bias = bias is not None
    values = bias if has_bias else np.zeros(1, dtype=out.dtype)
    for part in out if out.ndim == 3 else (out,):
        _add_bias_rectify_cpu(part, values, has_bias)
    return out


def relu_forward(x):
    """max(x, 0), any shape."""
    if get_xp(x) is not np:
        return get_xp(x).maximum(x, 0)
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    sized(_relu_forward_cpu, x.size)(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(dy, y, mask_forward: bool, rectify: bool):
    """dx = dy * [y > 0 if mask_forward] * [dy > 0 if rectify]; dy and dx of one shape and dtype,
    y (the forward output, or its mask y > 0 as bool) of that shape."""
    if get_xp(dy) is not np:
        from minicnn.kernels import gpu

        return gpu.relu_backward(dy, y, mask_forward, rectify)
    dy, y = np.ascontiguousarray(dy), np.ascontiguousarray(y)
    dx = np.empty_like(dy)
    flat = (dy.reshape(-1), y.reshape(-1), bool(mask_forward), bool(rectify), dx.reshape(-1))
    sized(_relu_backward_cpu, dy.size)(*flat)
    return dx
