"""Data augmentation: small random translations (as in Simard et al. 2003, sec. 2, without the
elastic part), each image moved by up to ``max_shift`` pixels in each direction, zero-filled; and faint
background noise, so that a model also sees digits on a non-black background (the clutter samples)."""

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


def background_noise(x, amplitude: float, rng) -> np.ndarray:
    """x (N, C, H, W) in [0, 1] -> max(x, u) with u uniform in [0, a_n), a_n uniform in [0, amplitude).

    Each image gets its own noise level (some none at all); the maximum leaves the strokes intact,
    as the clutter generator composes its canvases (minicnn/train/clutter.py).
    """
    if amplitude <= 0:
        return x
    levels = rng.uniform(0.0, amplitude, size=(len(x), 1, 1, 1)).astype(x.dtype)
    return np.maximum(x, rng.random(x.shape, dtype=np.float32).astype(x.dtype) * levels)
