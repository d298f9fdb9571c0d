"""minicnn/kernels/gemm.py: products split over threads with single-threaded BLAS.

The reference is an independent float64 product (an einsum of float64 copies, not the code under
test); every split the module makes (a stack by its stack, a matrix by its rows, a short matrix or
a smaller one by the columns of b, a strided output) is forced by the shapes, and BLAS's thread
count must be what it was afterwards. A mutation check: dropping one part leaves zeros that the
comparison catches.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from support import assert_close

from minicnn.kernels import gemm

SHAPES = {
    "stack": ((36, 64, 96), (36, 96, 200)),  # Winograd's 36 products
    "stack-shared-b": ((16, 40, 64), (64, 300)),
    "rows": ((300, 256), (256, 120)),  # im2col: many rows
    "columns": ((1, 4096), (4096, 1000)),  # a dense layer at batch 1
    "columns-of-the-larger": ((8, 512), (512, 3000)),  # a dense layer's backward at batch 8
}


def _reference(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    if a.ndim == 3:
        return np.einsum("bmk,bkn->bmn" if b.ndim == 3 else "bmk,kn->bmn", a, b)
    return np.einsum("mk,kn->mn", a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(SHAPES))
def test_split_products_equal_float64_reference(two_threads, case, dtype):
    rng = np.random.default_rng(0)
    sa, sb = SHAPES[case]
    a, b = rng.standard_normal(sa).astype(dtype), rng.standard_normal(sb).astype(dtype)
    assert a.size * b.shape[-1] >= gemm.MIN_SPLIT_WORK  # the split path, not the plain fallback
    got = gemm.matmul(a, b)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert_close(got, _reference(a, b), rtol=rtol, what=case)


def test_strided_output_and_blas_threads_restored(two_threads):
    """The output may be a view (im2col writes into y[n]); BLAS's own thread count is kept."""
    controllers = gemm._blas_controllers()
    if not controllers:
        pytest.skip("threadpoolctl finds no BLAS here: products fall back to np.matmul")
    before = [c.num_threads for c in controllers]
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((1, 2048)), rng.standard_normal((2048, 1024))
    big = np.zeros((3, 1024))
    out = big[1:2]  # a row of a larger array
    gemm.matmul(a, b, out=out)
    assert_close(big[1:2], _reference(a, b), rtol=1e-12)
    assert not big[0].any() and not big[2].any()
    assert [c.get_num_threads() for c in controllers] == before


def test_a_lost_part_is_caught(two_threads, monkeypatch):
    """The reference comparison fails when one part is dropped (the split is really checked)."""
    real = gemm._product
    calls = []

    def drop_first(a, b, out):
        calls.append(1)
        if len(calls) > 1:
            real(a, b, out)

    monkeypatch.setattr(gemm, "_product", drop_first)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((36, 64, 96)), rng.standard_normal((36, 96, 200))
    got = gemm.matmul(a, b, out=np.zeros((36, 64, 200)))
    assert len(calls) == 2
    with pytest.raises(AssertionError):
        assert_close(got, _reference(a, b), rtol=1e-12)


def test_a_forked_child_splits_products_too(two_threads):
    """multiprocessing's default start on Linux forks: the child must not wait on the parent's pool
    threads, which it does not have (without the at-fork reset this test hangs and times out)."""
    import multiprocessing

    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((36, 64, 96)), rng.standard_normal((36, 96, 200))
    gemm.matmul(a, b)  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_split_in_child, (a, b)).get(timeout=60)
    assert_close(got, _reference(a, b), rtol=1e-12)


def _split_in_child(a, b):
    numba.set_num_threads(2)
    return gemm.matmul(a, b)


def test_layer_products_go_through_gemm(two_threads, monkeypatch):
    """Dense (forward, input and weight gradients) and im2col convolution (forward, backward) multiply
    through gemm.product, never with ``@`` (which would wake BLAS's own threads during a pass: see
    gemm.product). Counted by replacing gemm.product with a counting float64 einsum, so that the
    results also show each product was this one."""
    import minicnn as mc

    calls = []

    def counting(a, b, out=None):
        calls.append(a.shape)
        result = _reference(a, b)
        if out is None:
            return result
        out[...] = result
        return out

    monkeypatch.setattr(gemm, "product", counting)
    rng = np.random.default_rng(4)
    conv, dense = mc.Conv2D(3, 4, 3, padding=1, algorithm="im2col"), mc.Dense(4 * 5 * 5, 6)
    conv.init_params(rng, np.float64)
    dense.init_params(rng, np.float64)
    dense.bias = rng.standard_normal(6)
    x = rng.standard_normal((2, 3, 5, 5))
    h, conv_cache = conv.forward(x)
    y, dense_cache = dense.forward(h.reshape(2, -1))
    dy = rng.standard_normal(y.shape)
    dh, grads = dense.backward(dy, dense_cache, need_params=True)
    conv.backward(dh.reshape(h.shape), conv_cache, need_params=True)
    assert len(calls) == 9  # conv forward (per image: 2), dense forward, dx and dW, conv dx and dW (2 each)
    assert_close(y, h.reshape(2, -1) @ dense.weight.T + dense.bias, 1e-12, "dense forward")
    assert_close(grads["weight"], dy.T @ h.reshape(2, -1), 1e-12, "dense weight gradient")


@pytest.mark.parametrize("case", ["rows", "columns", "columns-of-the-larger", "im2col-small"])
def test_the_thread_count_does_not_change_the_bits(two_threads, case):
    """A 2-D product is cut into the same BLAS calls on one thread as on two (the parts follow the
    machine's cores, not the thread count): a job worker with NUMBA_NUM_THREADS=1 computes the bits
    the parent computes. A whole np.matmul differs from the split in float32 for the small im2col
    shape (BLAS picks other kernels for the other shape), so that is what one thread used to give."""
    shapes = dict(SHAPES, **{"im2col-small": ((16, 144), (144, 784))})  # the digit model's 3x3 layer
    rng = np.random.default_rng(5)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in shapes[case])
    two = gemm.matmul(a, b)
    numba.set_num_threads(1)
    one = gemm.matmul(a, b)
    np.testing.assert_array_equal(one, two)
    assert_close(one, _reference(a, b), rtol=1e-5, what=case)


@pytest.mark.parametrize(
    "shape", [((16, 32), (32, 1)), ((3, 40, 8), (3, 8, 5))], ids=["matrix-vector", "stack"]
)
def test_a_small_product_runs_with_blas_on_one_thread(two_threads, monkeypatch, shape):
    """A product below MIN_SPLIT_WORK is one call, made with BLAS on one thread even where BLAS's own
    setting is two: a multi-threaded BLAS may split the sums of a small product (OpenBLAS's on an
    AVX2 machine does) and round otherwise than a job worker's one-thread BLAS, and a sharded job's
    arrays then differ from the same job in one process. BLAS's setting is restored afterwards."""
    controllers = gemm._blas_controllers()
    if not controllers:
        pytest.skip("threadpoolctl finds no BLAS here: products fall back to np.matmul")
    before = [c.num_threads for c in controllers]
    seen, product = [], gemm._product
    monkeypatch.setattr(
        gemm,
        "_product",
        lambda *job: (seen.append([c.get_num_threads() for c in controllers]), product(*job)),
    )
    rng = np.random.default_rng(2)
    a, b = (rng.standard_normal(s) for s in shape)
    assert a.shape[-2] * a.shape[-1] * b.shape[-1] * (a.shape[0] if a.ndim == 3 else 1) < gemm.MIN_SPLIT_WORK
    for c in controllers:
        c.set_num_threads(2)
    try:
        got = gemm.matmul(a, b)
        assert seen and all(n == [1] * len(controllers) for n in seen), seen
        assert [c.get_num_threads() for c in controllers] == [2] * len(controllers)
    finally:
        for c, n in zip(controllers, before):
            c.set_num_threads(n)
    assert_close(got, _reference(a, b), rtol=1e-12, what="small product")
