"""Integrated Gradients (Sundararajan et al. 2017) against Captum's IntegratedGradients in float64,
its completeness gap shrinking with the steps, and IG = gradient x input on a bias-free network."""

from __future__ import annotations

import numpy as np
import pytest
from method_nets import small_vgg
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.tools.integrated_gradients import QUADRATURES, path_nodes


def with_biases(net, seed=5, scale=0.3):
    """net with random biases (He initialisation leaves them at 0): no longer homogeneous."""
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if layer.has_params:
            layer.bias = (scale * rng.standard_normal(layer.bias.shape)).astype(net.dtype)
    return net


@pytest.fixture(scope="module")
def net64():
    return with_biases(small_vgg(seed=3).astype(np.float64))


@pytest.fixture(scope="module")
def x64():
    return np.random.default_rng(1).standard_normal((3, 3, 16, 16))


@pytest.fixture
def float64_default():
    """torch's default dtype float64 for one test: Captum's Riemann nodes then come in float64."""
    torch = oracle("torch")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(old)


def captum_ig(net, x, target, baseline, steps, method):
    torch = oracle("torch")
    attr = oracle("captum.attr")
    from minicnn.tools.captum_reference import torch_mirror

    ig = attr.IntegratedGradients(torch_mirror(net))
    base = torch.as_tensor(np.broadcast_to(baseline, x.shape).copy())
    out = ig.attribute(torch.tensor(x, requires_grad=True), baselines=base, target=list(target),
                       n_steps=steps, method=method)  # fmt: skip
    return out.detach().numpy()


def torch_path_gradients(net, x, target, baseline, nodes):
    """dF_t/dx at baseline + a_k (x - baseline) for every node a_k, by torch autograd on the mirror:
    (steps, N, C, H, W) float64."""
    torch = oracle("torch")
    from minicnn.tools.captum_reference import torch_mirror

    model = torch_mirror(net)
    out = []
    for a in nodes:
        point = torch.tensor(baseline + a * (x - baseline), requires_grad=True)
        model(point)[torch.arange(len(x)), torch.as_tensor(target)].sum().backward()
        out.append(point.grad.numpy())
    return np.stack(out)


@pytest.mark.parametrize("method", QUADRATURES)
def test_equals_captum_in_float64(net64, x64, method, float64_default):
    """Captum rounds the quadrature weights to float32 (``torch.tensor(step_sizes).float()`` in
    IntegratedGradients), whatever the input's dtype: its map is ours with w_k replaced by
    float32(w_k). We add back (x - x') sum_k (w_k - float32(w_k)) g_k, g_k from torch autograd, and
    then agree to 1e-12; without that term the two differ by more (the convention is real)."""
    target = [0, 3, 1]
    baseline = np.random.default_rng(2).standard_normal((3, 16, 16)) * 0.1  # one image for all
    ours = mc.integrated_gradients(net64, x64, target, baseline=baseline, steps=17, method=method,
                                   batch_size=10)  # fmt: skip
    assert ours.shape == x64.shape and ours.dtype == np.float64
    captum = captum_ig(net64, x64, target, baseline, 17, method)
    nodes, weights = path_nodes(method, 17)
    rounding = weights - weights.astype(np.float32).astype(np.float64)
    grads = torch_path_gradients(net64, x64, target, baseline, nodes)
    correction = (x64 - baseline) * np.tensordot(rounding, grads, axes=1)
    assert_close(ours, captum + correction, rtol=1e-12, what=method)
    assert np.abs(ours - captum).max() > 1e-11 * np.abs(captum).max()


def test_equals_captum_where_weights_are_exact_in_float32(net64, x64, float64_default):
    """Two steps: weights 1/2 (or Gauss-Legendre's 1/2), exact in float32: no correction at all."""
    for method in QUADRATURES:
        ours = mc.integrated_gradients(net64, x64, [4, 2, 0], steps=2, method=method)
        assert_close(ours, captum_ig(net64, x64, [4, 2, 0], 0.0, 2, method), rtol=1e-13, what=method)


def test_captum_riemann_nodes_are_float32_rounded():
    """Captum's other convention: Riemann nodes from torch.linspace in torch's default dtype (float32
    unless changed), i.e. computed in float32: a few float32 roundings (< 1e-6) from our float64
    nodes, never exactly them; Gauss-Legendre's agree in float64."""
    oracle("torch")
    from captum.attr._utils.approximation_methods import approximation_parameters

    for method in QUADRATURES:
        sizes, alphas = approximation_parameters(method)
        a, w = path_nodes(method, 13)
        np.testing.assert_allclose(sizes(13), w, rtol=0, atol=1e-15)
        if method == "gausslegendre":
            np.testing.assert_allclose(alphas(13), a, rtol=0, atol=1e-15)
        else:
            off = np.abs(np.asarray(alphas(13)) - a).max()
            assert 0 < off < 4 * np.finfo(np.float32).eps, (method, off)


def test_gap_shrinks_with_steps(net64, x64):
    """sum IG - (F(x) - F(0)) falls with n, about as 1/n for the left sum (the integrand is piecewise
    smooth: the ReLUs' kinks along the path keep Gauss-Legendre from its smooth-integrand rate)."""
    gaps = {}
    for method in ("riemann_left", "riemann_trapezoid", "gausslegendre"):
        for steps in (4, 16, 64):
            ig = mc.integrated_gradients(net64, x64, [0, 3, 1], steps=steps, method=method)
            gaps[method, steps] = np.abs(mc.completeness_gap(net64, x64, ig, [0, 3, 1])).max()
    for method in ("riemann_left", "riemann_trapezoid", "gausslegendre"):
        assert gaps[method, 4] > gaps[method, 16] > gaps[method, 64], (method, gaps)
    assert gaps["riemann_left", 64] > 1e-4  # a real gap (kinks of the ReLUs along the path)
    assert gaps["riemann_left", 4] > 8 * gaps["riemann_left", 64]  # roughly 1/n


def test_completeness_gap_is_sum_minus_score_difference(net64, x64):
    """completeness_gap against the scores computed here: sum(attr) - (F_t(x) - F_t(x'))."""
    attribution = np.random.default_rng(4).standard_normal(x64.shape)
    baseline = np.full((3, 16, 16), 0.25)
    f = net64.forward(x64)
    fb = net64.forward(np.broadcast_to(baseline, x64.shape).copy())
    t = [2, 0, 4]
    expected = attribution.reshape(3, -1).sum(axis=1) - (f[range(3), t] - fb[range(3), t])
    got = mc.completeness_gap(net64, x64, attribution, t, baseline=baseline)
    assert_close(got, expected, rtol=1e-12, what="gap")


def test_zero_baseline_equals_gradient_times_input_without_biases(x64):
    """ReLU, max-pool, convolutions and dense layers without biases: F(a x) = a F(x), the gradient is
    constant along the ray, IG(0) = x dF/dx (measured); with biases it is not (the test can fail)."""
    net = small_vgg(seed=3).astype(np.float64)  # He initialisation: every bias 0
    assert all(not np.any(layer.bias) for layer in net.layers if layer.has_params)
    ig = mc.integrated_gradients(net, x64, [0, 3, 1], steps=7, method="riemann_right")
    gxi = mc.saliency(net, x64, [0, 3, 1], signed=True, times_input=True)
    assert_close(ig, gxi, rtol=1e-13, what="IG vs gradient x input")
    biased = with_biases(small_vgg(seed=3).astype(np.float64))
    ig_b = mc.integrated_gradients(biased, x64, [0, 3, 1], steps=7, method="riemann_right")
    gxi_b = mc.saliency(biased, x64, [0, 3, 1], signed=True, times_input=True)
    assert np.abs(ig_b - gxi_b).max() > 1e-3 * np.abs(gxi_b).max()


def test_batch_size_changes_nothing(net64, x64):
    a = mc.integrated_gradients(net64, x64, 1, steps=9, batch_size=1)
    b = mc.integrated_gradients(net64, x64, 1, steps=9, batch_size=1000)
    assert_close(a, b, rtol=1e-13, what="batch sizes")


@pytest.mark.parametrize(
    "kwargs, message",
    [({"steps": 0}, "steps must be an integer >= 1"), ({"steps": 1, "method": "riemann_trapezoid"}, ">= 2"),
     ({"method": "simpson"}, "unknown integration method 'simpson'"),
     ({"baseline": np.zeros((2, 16, 16))}, "baseline must be a number, a (3, 16, 16) image"),
     ({"baseline": np.nan}, "baseline must be finite"), ({"batch_size": 0}, "batch_size must be")],
)  # fmt: skip
def test_bad_arguments_are_one_line(net64, x64, kwargs, message):
    with pytest.raises(MinicnnError) as err:
        mc.integrated_gradients(net64, x64, 0, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)
