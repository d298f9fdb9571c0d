"""Data augmentation by small random translations (as in Simard et al. 2003, sec. 2, without the
elastic part): each image moves by up to ``max_shift`` pixels in each direction, zero-filled."""

from __future__ import annotations

import numpy as np


def random_shift(x, max_shift: int, rng) -> np.ndarray:
    """x (N, C, H, W) -> same shape and dtype, each image shifted by its own random (dy, dx).

    One gather for the whole batch: pad by ``max_shift``, then read an H x W window at a per-image
    offset drawn uniformly from [0, 2 * max_shift].
    """
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    m = max_shift
    padded = np.pad(x, ((0, 0), (0, 0), (m, m), (m, m)))
    oy = rng.integers(0, 2 * m + 1, size=n)
    ox = rng.integers(0, 2 * m + 1, size=n)
    rows = (oy[:, None] + np.arange(h))[:, None, :, None]  # (N, 1, H, 1)
    cols = (ox[:, None] + np.arange(w))[:, None, None, :]  # (N, 1, 1, W)
    return padded[np.arange(n)[:, None, None, None], np.arange(x.shape[1])[None, :, None, None], rows, cols]
