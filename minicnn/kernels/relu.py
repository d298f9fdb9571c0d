"""ReLU forward and the ReLU backward as one fused pass (CPU: Numba, GPU: minicnn.kernels.gpu).

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
