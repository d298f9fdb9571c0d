"""A dense layer's input gradient for one image from the rows of W that dy selects
(minicnn/kernels/dense.py), against the float64 product of the same operands (NumPy, another
summation altogether), and the choice between it and the full product."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn.kernels import dense, gemm


def signal(rng, out, nonzero, dtype):
    """dy (1, out) with exactly ``nonzero`` nonzero values, at random places."""
    dy = np.zeros((1, out), dtype=dtype)
    dy[0, rng.choice(out, nonzero, replace=False)] = rng.standard_normal(nonzero)
    return dy


@pytest.fixture
def no_full_product(monkeypatch):
    """Fails a test whose product goes to BLAS (gemm.product) instead of the rows."""

    def refuse(a, b, out=None):
        raise AssertionError("the full product ran")

    monkeypatch.setattr(gemm, "product", refuse)


# 1-7: the tail of the four-row passes (0-3 rows left over); 150 of 301: half, past any unrolling.
@pytest.mark.parametrize("nonzero", [0, 1, 3, 4, 5, 7, 150])
@pytest.mark.parametrize("dtype,rtol", [(np.float32, 2e-6), (np.float64, 1e-14)])
def test_rows_against_float64(no_full_product, nonzero, dtype, rtol):
    rng = np.random.default_rng(nonzero)
    w = rng.standard_normal((301, 517)).astype(dtype)  # odd sides: the threads' column runs differ
    dy = signal(rng, 301, nonzero, dtype)
    dx = dense.input_gradient(dy, w)
    assert dx.shape == (1, 517) and dx.dtype == dtype
    reference = dy.astype(np.float64) @ w.astype(np.float64)
    scale = max(np.abs(reference).max(), 1e-30)
    assert np.abs(dx - reference).max() <= rtol * scale
    if nonzero == 0:
        assert not dx.any()


def test_full_product_where_rows_do_not_pay(monkeypatch):
    """Above SPARSE_MAX_DENSITY nonzero values, for more than one image, and for a W that is not
    C-contiguous, BLAS does the product."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((100, 40)).astype(np.float32)
    calls = []
    product = gemm.product
    monkeypatch.setattr(gemm, "product", lambda a, b, out=None: calls.append(a.shape) or product(a, b))
    dense_dy = signal(rng, 100, 61, np.float32)  # 61% > 60%
    np.testing.assert_allclose(dense.input_gradient(dense_dy, w), dense_dy @ w, rtol=1e-5, atol=1e-5)
    batch = np.concatenate([signal(rng, 100, 5, np.float32) for _ in range(2)])
    np.testing.assert_allclose(dense.input_gradient(batch, w), batch @ w, rtol=1e-5, atol=1e-5)
    transposed = np.ascontiguousarray(w.T).T  # the same values, not C-contiguous: no copy of W
    sparse = signal(rng, 100, 5, np.float32)
    np.testing.assert_allclose(dense.input_gradient(sparse, transposed), sparse @ w, rtol=1e-5, atol=1e-5)
    assert calls == [(1, 100), (2, 100), (1, 100)]
    dense.input_gradient(signal(rng, 100, 60, np.float32), w)  # 60%: the rows
    assert len(calls) == 3


def test_dense_layer_uses_the_rows(no_full_product):
    """A Dense layer's backward at batch 1 behind a ReLU (half its units off) goes through the rows,
    and matches the float64 layer."""
    rng = np.random.default_rng(2)
    layer = mc.Dense(64, 32)
    layer.init_params(rng)
    cache = rng.standard_normal((1, 64)).astype(np.float32)  # the input (the forward is BLAS's: not run)
    dy = np.maximum(rng.standard_normal((1, 32)), 0).astype(np.float32)
    assert 0 < np.count_nonzero(dy) <= 0.6 * dy.size
    dx, _ = layer.backward(dy, cache)
    reference = dy.astype(np.float64) @ layer.weight.astype(np.float64)
    assert np.abs(dx - reference).max() <= 2e-6 * np.abs(reference).max()
