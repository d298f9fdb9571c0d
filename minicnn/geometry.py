"""Sliding-window geometry, stated once: how many outputs a window makes and which inputs one reads.

At the bottom floor of the package (beside errors.py), so that kernels, layers and tools share it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Outputs along one axis of a sliding window: floor((size + 2 padding - kernel) / stride) + 1.

    The one place this formula is written (Chainer's ``get_conv_outsize``); callers check that the
    padded input is at least one window wide.
    """
    return (size + 2 * padding - kernel) // stride + 1


class Window(NamedTuple):
    """The input window that one output position reads, per spatial axis (h, w).

    Output (i, j) reads padded-input rows i*stride[0] ... i*stride[0] + kernel[0] - 1, i.e. input
    rows from i*stride[0] - padding[0] (likewise columns). Pointwise layers have the identity window.
    """

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    def input_span(self, axis: int, first: int, count: int) -> tuple[int, int]:
        """Input indices [start, stop) read by outputs first ... first + count - 1 along ``axis``
        (0: rows, 1: columns), in unpadded coordinates (they may reach into the padding)."""
        k, s, p = self.kernel[axis], self.stride[axis], self.padding[axis]
        return first * s - p, (first + count - 1) * s - p + k

    def output_span(self, axis: int, start, length: int, size_out: int):
        """Outputs changed by inputs [start, start + length) along ``axis``: (lo, hi) inclusive,
        clipped to [0, size_out - 1]. ``start`` may be an int or an integer array (one per item)."""
        k, s, p = self.kernel[axis], self.stride[axis], self.padding[axis]
        lo = np.maximum(-((k - 1 - p - start) // s), 0)  # ceil((start + p - k + 1) / s)
        hi = np.minimum((start + length - 1 + p) // s, size_out - 1)
        return lo, hi


POINTWISE = Window((1, 1), (1, 1), (0, 0))
