"""He initialisation (minicnn/layers/base.py: he_normal): the values of the formula, and no extra
full-size copies while drawing them (building VGG16 once peaked at 3x fc1's 411 MB)."""

import tracemalloc

import numpy as np
import pytest

import minicnn as mc
from minicnn.layers.base import he_normal


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_are_the_formula(dtype):
    """N(0, 1) drawn in float32, times sqrt(2 / fan_in) computed in float64, rounded once to dtype;
    the same draws for a float32 and a float64 layer of one seed."""
    draw = np.random.default_rng(7).standard_normal((30, 20, 3, 3), np.float32)
    expected = (draw.astype(np.float64) * np.sqrt(2.0 / 180)).astype(dtype)
    w = he_normal(np.random.default_rng(7), (30, 20, 3, 3), 180, dtype)
    assert w.dtype == dtype
    np.testing.assert_array_equal(w, expected)
    layer = mc.Conv2D(20, 30, 3)
    layer.init_params(np.random.default_rng(7), dtype)
    np.testing.assert_array_equal(layer.weight, expected)
    big = he_normal(np.random.default_rng(8), (400, 500), 500, dtype)
    assert abs(big.std() / np.sqrt(2.0 / 500) - 1) < 0.01  # 200,000 draws: the std within 1%


def test_no_extra_full_size_copies():
    """Peak NumPy memory while initialising a 2000 x 1000 Dense layer (8 MB of float32 weights) stays
    within 1.25x the weights (NumPy reports its buffers to tracemalloc)."""
    layer = mc.Dense(2000, 1000)
    tracemalloc.start()
    try:
        layer.init_params(np.random.default_rng(0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert layer.weight.nbytes == 8_000_000
    assert peak < 1.25 * layer.weight.nbytes, peak
