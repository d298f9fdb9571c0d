"""Keras -> engine weight layouts, checked element by element against the index formulas."""

from __future__ import annotations

import numpy as np

from minicnn.io.keras_weights import conv_kernel, dense_kernel, transpose2d


def test_conv_kernel_hwio_to_oihw():
    k = np.random.default_rng(0).standard_normal((3, 5, 4, 6)).astype(np.float32)
    w = conv_kernel(k)
    assert w.shape == (6, 4, 3, 5)
    for o, c, u, v in [(0, 0, 0, 0), (5, 3, 2, 4), (2, 1, 0, 3)]:
        assert w[o, c, u, v] == k[u, v, c, o]


def test_dense_kernel_flatten_order():
    """Engine column c*H*W + h*W + w holds Keras row h*W*C + w*C + c, for every (c, h, w, o)."""
    h, w, c, out = 3, 5, 4, 7
    k = np.random.default_rng(1).standard_normal((h * w * c, out)).astype(np.float32)
    got = dense_kernel(k, (h, w, c))
    expected = np.empty((out, c * h * w), np.float32)
    for o in range(out):
        for ci in range(c):
            for hi in range(h):
                for wi in range(w):
                    expected[o, ci * h * w + hi * w + wi] = k[hi * w * c + wi * c + ci, o]
    np.testing.assert_array_equal(got, expected)
    assert got.flags.c_contiguous


def test_tiled_transpose_ragged_tiles():
    a = np.random.default_rng(2).standard_normal((1100, 700)).astype(np.float32)
    for shape, block in [((1100, 700), 512), ((1100, 613), 97), ((5, 3), 512)]:
        src = a[: shape[0], : shape[1]]
        t = transpose2d(src, block=block)
        np.testing.assert_array_equal(t, src.T)
        assert t.flags.c_contiguous
