"""Average pooling against PyTorch (forward and autograd, float64), and its DeconvNet reverse stage
(the transpose of averaging, computed apart from backward) against naive loops and torch autograd.

No backward rule changes average pooling (``reads_rule`` is False): the rule is never passed to it.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import assert_close, oracle

import minicnn as mc
from minicnn.backend import gpu_available, to_device, to_numpy
from minicnn.errors import MinicnnError

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
    assert_close(layer.backward(dy, cache)[0], tx.grad.numpy(), rtol=1e-12)


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
    assert_close(layer.backward(dy, cache)[0], tx.grad.numpy(), rtol=1e-12)


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
    dec_g = layer.reverse(to_device(dy, "gpu"), cache_g, x.shape)
    assert_close(to_numpy(dec_g), layer.reverse(dy, cache, x.shape), rtol=1e-5)


# -- the DeconvNet reverse stage: the transpose of averaging ---------------------------------------


def naive_unaverage(signal, windows, input_shape):
    """Loops: every output (i, j) spreads signal[n, c, i, j] / divisor evenly over the input
    positions of its window. windows(i, j) -> (rows, cols, divisor), rows and cols inside the input."""
    out = np.zeros(input_shape)
    for n, c, i, j in np.ndindex(*signal.shape):
        rows, cols, divisor = windows(i, j)
        for r in rows:
            for q in cols:
                out[n, c, r, q] += signal[n, c, i, j] / divisor
    return out


def avgpool_windows(layer, h, w):
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding

    def windows(i, j):
        rows = [r for r in range(i * sh - ph, i * sh - ph + kh) if 0 <= r < h]
        cols = [q for q in range(j * sw - pw, j * sw - pw + kw) if 0 <= q < w]
        return rows, cols, (kh * kw if layer.count_include_pad else len(rows) * len(cols))

    return windows


def adaptive_windows(layer, h, w):
    (oh, ow) = layer.output_size

    def windows(i, j):  # torch's rule: [floor(i H / oh), ceil((i + 1) H / oh)), written out again
        rows = range(int(np.floor(i * h / oh)), int(np.ceil((i + 1) * h / oh)))
        cols = range(int(np.floor(j * w / ow)), int(np.ceil((j + 1) * w / ow)))
        return rows, cols, len(rows) * len(cols)

    return windows


def reverse_case(layer, hw, seed):
    """(the layer's reverse stage, its backward, the input x, the signal) on one random input."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, *hw))
    y, cache = layer.forward(x)
    signal = rng.standard_normal(y.shape)
    return layer.reverse(signal, cache, x.shape), x, signal


@pytest.mark.parametrize("kernel, stride, padding, include, hw", CASES)
def test_avgpool_reverse_against_loops_and_torch(kernel, stride, padding, include, hw):
    torch = oracle("torch")
    layer = mc.AvgPool2D(kernel, stride, padding, count_include_pad=include)
    dec, x, signal = reverse_case(layer, hw, seed=4)
    assert_close(dec, naive_unaverage(signal, avgpool_windows(layer, *hw), x.shape), rtol=1e-12)
    # the transpose of averaging is the gradient of average pooling
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.avg_pool2d(tx, kernel, stride, padding, count_include_pad=include)
    ty.backward(torch.tensor(signal))
    assert_close(dec, tx.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "hw, out", [((14, 14), 7), ((9, 11), 4), ((7, 7), 7), ((5, 3), (2, 3)), ((6, 10), 4)]
)
def test_adaptive_avgpool_reverse_against_loops_and_torch(hw, out):
    torch = oracle("torch")
    layer = mc.AdaptiveAvgPool2D(out)
    dec, x, signal = reverse_case(layer, hw, seed=5)
    assert_close(dec, naive_unaverage(signal, adaptive_windows(layer, *hw), x.shape), rtol=1e-12)
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.adaptive_avg_pool2d(tx, out).backward(torch.tensor(signal))
    assert_close(dec, tx.grad.numpy(), rtol=1e-12)


def test_reverse_stage_is_not_the_backward_code(monkeypatch):
    """The reverse stage is its own code: a broken backward leaves it as it was (so the equivalence
    table's average-pool rows compare two codes)."""
    for layer, hw in [(mc.AvgPool2D(3, 2, 1), (9, 7)), (mc.AdaptiveAvgPool2D(4), (9, 11))]:
        before, x, signal = reverse_case(layer, hw, seed=6)
        monkeypatch.setattr(type(layer), "backward", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
        after, _, _ = reverse_case(layer, hw, seed=6)
        np.testing.assert_array_equal(after, before)


def test_float32_reverse_keeps_its_dtype():
    x = np.random.default_rng(7).standard_normal((1, 2, 9, 11)).astype(np.float32)
    for layer in (mc.AvgPool2D(3, 2, 1, count_include_pad=False), mc.AdaptiveAvgPool2D(4)):
        y, cache = layer.forward(x)
        dec = layer.reverse(np.ones_like(y), cache, x.shape)
        assert dec.dtype == np.float32 and dec.shape == x.shape
        assert_close(dec, layer.backward(np.ones_like(y), cache)[0], rtol=1e-6)


@pytest.mark.parametrize("include", [True, False])
def test_declared_torch_module_keeps_the_divisor(include):
    """The torch module the layer declares (verify --against captum, the test mirror) divides as the
    layer does; Keras, which has no pool that skips the padding, is refused in one line."""
    torch = oracle("torch")
    layer = mc.AvgPool2D(3, 2, 1, count_include_pad=include)
    x = np.random.default_rng(8).standard_normal((2, 3, 9, 7))
    out = layer.torch_module(torch.nn)(torch.tensor(x)).numpy()
    assert_close(out, layer.forward(x)[0], rtol=1e-12)
    if not include:
        with pytest.raises(MinicnnError, match="skips the padding"):
            layer.keras_layers(None, (3, 9, 7))
