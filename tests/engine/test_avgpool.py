"""Average pooling against PyTorch (forward and autograd, float64) and the same spread in every mode."""

from __future__ import annotations

import numpy as np
import pytest
from support import assert_close, oracle

import minicnn as mc
from minicnn.backend import gpu_available, to_device, to_numpy

CASES = [  # kernel, stride, padding, count_include_pad, input (H, W)
    (2, 2, 0, True, (8, 8)),
    (3, 2, 1, True, (9, 7)),
    (3, 2, 1, False, (9, 7)),
    (3, 1, 1, False, (5, 6)),
    ((2, 3), (1, 2), (1, 1), True, (6, 7)),
]


@pytest.mark.parametrize("kernel, stride, padding, include, hw", CASES)
def test_avgpool_equals_torch(kernel, stride, padding, include, hw):
    torch = oracle("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, *hw))
    layer = mc.AvgPool2D(kernel, stride, padding, count_include_pad=include)
    y, cache = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.avg_pool2d(tx, kernel, stride, padding, count_include_pad=include)
    ty.backward(torch.tensor(dy))
    assert y.shape == tuple(ty.shape) == (2, 3, *layer.output_shape(x.shape[1:])[1:])
    assert_close(y, ty.detach().numpy(), rtol=1e-12)
    for mode in mc.MODES:  # no ReLU inside: the three rules are the same spread
        assert_close(layer.backward(dy, cache, mode=mode)[0], tx.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("hw, out", [((14, 14), 7), ((9, 11), 4), ((7, 7), 7), ((5, 3), (2, 3))])
def test_adaptive_avgpool_equals_torch(hw, out):
    torch = oracle("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, *hw))
    layer = mc.AdaptiveAvgPool2D(out)
    y, cache = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.adaptive_avg_pool2d(tx, out)
    ty.backward(torch.tensor(dy))
    assert_close(y, ty.detach().numpy(), rtol=1e-12)
    for mode in mc.MODES:
        assert_close(layer.backward(dy, cache, mode=mode)[0], tx.grad.numpy(), rtol=1e-12)


def test_count_include_pad_matters():
    """The two divisors really differ at the border (so the tests above can tell them apart)."""
    x = np.ones((1, 1, 4, 4))
    inc = mc.AvgPool2D(3, 1, 1, count_include_pad=True).forward(x)[0]
    exc = mc.AvgPool2D(3, 1, 1, count_include_pad=False).forward(x)[0]
    assert inc[0, 0, 0, 0] == pytest.approx(4 / 9) and exc[0, 0, 0, 0] == pytest.approx(1.0)


def test_forward_padded_matches_forward_on_the_padded_input():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 6, 6))
    layer = mc.AvgPool2D(3, 2, 1)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    assert_close(layer.forward_padded(padded), layer.forward(x)[0], rtol=1e-12)


@pytest.mark.skipif(not gpu_available(), reason="no CUDA device / CuPy here")
@pytest.mark.parametrize("layer", [mc.AvgPool2D(3, 2, 1, count_include_pad=False), mc.AdaptiveAvgPool2D(4)])
def test_gpu_equals_cpu(layer):
    """The layers are written once against the array module: CuPy gives NumPy's numbers."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
    y, cache = layer.forward(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    yg, cache_g = layer.forward(to_device(x, "gpu"))
    assert_close(to_numpy(yg), y, rtol=1e-5)
    dx_g = layer.backward(to_device(dy, "gpu"), cache_g)[0]
    assert_close(to_numpy(dx_g), layer.backward(dy, cache)[0], rtol=1e-5)
