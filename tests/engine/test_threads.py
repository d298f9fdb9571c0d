"""Kernels that run on all of Numba's threads or on the calling thread by size
(minicnn/kernels/threads.py): the choice, and both builds of each kernel that makes it against an
independent reference (NumPy's own operations, the naive loops of tests/naive.py). Elsewhere the
tests' arrays are small, so without ``both_builds`` the parallel builds would go untested."""

from __future__ import annotations

import naive
import numba
import numpy as np
import pytest

from minicnn.kernels import maxpool, relu, threads


@pytest.fixture(params=["serial", "parallel"])
def both_builds(request, monkeypatch, two_threads):
    """Runs the test once with every sized kernel on one thread and once on all (two) threads."""
    monkeypatch.setattr(threads, "PARALLEL_MIN_ELEMENTS", 0 if request.param == "parallel" else 1 << 62)
    return request.param


def test_sized_picks_by_elements_and_threads(monkeypatch, two_threads):
    kernel = relu._relu_forward_cpu
    assert threads.sized(kernel, threads.PARALLEL_MIN_ELEMENTS) is kernel
    assert threads.sized(kernel, threads.PARALLEL_MIN_ELEMENTS - 1) is threads.serial(kernel)
    assert not threads.serial(kernel).targetoptions.get("parallel")
    numba.set_num_threads(1)
    assert threads.sized(kernel, 1 << 40) is threads.serial(kernel)


def test_relu_rules(both_builds):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    y = relu.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    dy = rng.standard_normal(x.shape).astype(np.float32)
    expected = {
        "gradient": np.where(y > 0, dy, 0),
        "deconvnet": np.where(dy > 0, dy, 0),
        "guided": np.where((dy > 0) & (y > 0), dy, 0),
    }
    for mode, dx in expected.items():
        np.testing.assert_array_equal(relu.relu_backward(dy, y, mode), dx, err_msg=mode)


@pytest.mark.parametrize("kernel,stride", [((2, 2), 2), ((3, 3), 2)], ids=["vgg", "overlapping"])
def test_maxpool(both_builds, kernel, stride):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, (2, 3, 7, 9)).astype(np.float64)  # ties in most windows
    kh, kw = kernel
    y, switches = maxpool.maxpool_forward(x, kh, kw, stride)
    y_ref, switches_ref = naive.maxpool_forward(x, kh, kw, stride)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(switches, switches_ref)
    dy = rng.standard_normal(y.shape)
    dx = maxpool.maxpool_backward(dy, switches, x.shape, kh, kw, stride)
    np.testing.assert_array_equal(dx, naive.maxpool_backward(dy, switches_ref, x.shape, kw, stride))
