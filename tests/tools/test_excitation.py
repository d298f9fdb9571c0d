"""Excitation backprop (Zhang et al. 2016) against a naive loop implementation of its eq. 6 in float64.

The reference below is the paper's formula written out one index at a time: the forward activations
from tests/naive.py's loops, then P(a_i) = sum_j P(a_j) a_i w+_ij / sum_i' a_i' w+_i'j over every
connection of every layer (max pooling: the winner takes P; ReLU: P passes, the neuron's response
being its output), with no use of the engine's backward or of any LRP rule.
"""

from __future__ import annotations

import numpy as np
import pytest
from naive import conv2d_forward, maxpool_forward, out_size
from support import assert_close

import minicnn as mc
from minicnn.errors import MinicnnError


def pos(w):
    return np.maximum(w, 0.0)


def naive_conv(a, w, p_out, stride, padding):
    """P at the input of a convolution: loops over every (output, weight) connection."""
    n_, c_, h, wd = a.shape
    o_, _, kh, kw = w.shape
    ho, wo = out_size(h, kh, stride, padding), out_size(wd, kw, stride, padding)
    p_in = np.zeros(a.shape)
    for n in range(n_):
        for o in range(o_):
            for i in range(ho):
                for j in range(wo):
                    links = []  # (c, r, q, a_i w+_ij)
                    for c in range(c_):
                        for u in range(kh):
                            for v in range(kw):
                                r, q = i * stride - padding + u, j * stride - padding + v
                                if 0 <= r < h and 0 <= q < wd:
                                    links.append((c, r, q, a[n, c, r, q] * pos(w[o, c, u, v])))
                    z = sum(e for *_, e in links)
                    if z != 0:
                        for c, r, q, e in links:
                            p_in[n, c, r, q] += p_out[n, o, i, j] * e / z
    return p_in


def naive_dense(a, w, p_out):
    n_, k_ = p_out.shape
    p_in = np.zeros(a.shape)
    for n in range(n_):
        for j in range(k_):
            z = sum(a[n, i] * pos(w[j, i]) for i in range(a.shape[1]))
            if z != 0:
                for i in range(a.shape[1]):
                    p_in[n, i] += p_out[n, j] * a[n, i] * pos(w[j, i]) / z
    return p_in


def naive_maxpool(a, p_out, k):
    """The winner takes P: the first maximum of each window (tests/naive.py's switches)."""
    _, switches = maxpool_forward(a, k, k, k)
    p_in = np.zeros(a.shape)
    n_, c_, ho, wo = p_out.shape
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    ky, kx = divmod(int(switches[n, c, i, j]), k)
                    p_in[n, c, i * k + ky, j * k + kx] += p_out[n, c, i, j]
    return p_in


def naive_avgpool(a, p_out, k):
    """Weights 1/k^2 to every unit of a window (k = the whole map for global average pooling)."""
    p_in = np.zeros(a.shape)
    n_, c_, ho, wo = p_out.shape
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    window = [(i * k + u, j * k + v) for u in range(k) for v in range(k)]
                    z = sum(a[n, c, r, q] / k**2 for r, q in window)
                    if z != 0:
                        for r, q in window:
                            p_in[n, c, r, q] += p_out[n, c, i, j] * (a[n, c, r, q] / k**2) / z
    return p_in


def vgg_like(seed=0):
    """conv-ReLU-maxpool-conv-ReLU-avgpool-flatten-dense-ReLU-dropout-dense, with random biases."""
    net = mc.Sequential(
        [mc.Conv2D(2, 4, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2), mc.Conv2D(4, 5, 3), mc.ReLU(),
         mc.AvgPool2D(2), mc.Flatten(), mc.Dense(20, 6), mc.ReLU(), mc.Dropout(0.5), mc.Dense(6, 3)],
        seed=seed, dtype=np.float64,
    )  # fmt: skip
    rng = np.random.default_rng(seed + 100)
    for layer in net.layers:
        if layer.has_params:
            layer.bias = 0.1 * rng.standard_normal(layer.bias.shape)
    return net


def naive_vgg_like(net, x, target, contrastive=False):
    """Every layer of ``vgg_like`` by the loops above: {name of a layer: P at its output}, and the input's."""
    w = [layer.params for layer in net.layers if layer.has_params]
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    a0 = x
    a1 = relu(conv2d_forward(a0, w[0]["weight"], w[0]["bias"], 1, 1))
    a2, _ = maxpool_forward(a1, 2, 2, 2)
    a3 = relu(conv2d_forward(a2, w[1]["weight"], w[1]["bias"], 1, 0))
    a4 = (a3[:, :, 0::2, 0::2] + a3[:, :, 1::2, 0::2] + a3[:, :, 0::2, 1::2] + a3[:, :, 1::2, 1::2]) / 4
    a5 = a4.reshape(len(x), -1)
    a6 = relu(a5 @ w[2]["weight"].T + w[2]["bias"])
    p = np.zeros((len(x), 3))
    p[np.arange(len(x)), target] = 1.0
    p6 = naive_dense(a6, w[3]["weight"], p)
    if contrastive:  # the dual unit: weights -w, so (-w)+ where the unit had w+
        p6 = p6 - naive_dense(a6, -w[3]["weight"], p)
    p5 = naive_dense(a5, w[2]["weight"], p6)
    p4 = p5.reshape(a4.shape)
    p3 = naive_avgpool(a3, p4, 2)
    p2 = naive_conv(a2, w[1]["weight"], p3, 1, 0)
    p1 = naive_maxpool(a1, p2, 2)
    p0 = naive_conv(a0, w[0]["weight"], p1, 1, 1)
    names = net.names
    return {"input": p0, names[2]: p2, names[5]: p4, names[7]: p6}


@pytest.fixture(scope="module")
def net():
    return vgg_like()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).uniform(0, 1, (3, 2, 12, 12))  # pixels >= 0, as the paper assumes


@pytest.mark.parametrize("contrastive", [False, True])
def test_equals_naive_loops_at_every_layer(net, x, contrastive):
    target = [0, 2, 1]
    expected = naive_vgg_like(net, x, target, contrastive)
    for layer, reference in expected.items():
        got = mc.excitation_backprop(net, x, target, layer=None if layer == "input" else layer,
                                     contrastive=contrastive)  # fmt: skip
        assert got.dtype == np.float64 and got.shape == reference.shape
        assert_close(got, reference, rtol=1e-12, what=f"{layer} contrastive={contrastive}")


def test_signed_pixels_take_the_formula_as_written(net):
    """Negative inputs at the first layer: a_i w+_ij literally (P may be negative there)."""
    x = np.random.default_rng(2).standard_normal((2, 2, 12, 12))
    got = mc.excitation_backprop(net, x, [1, 1])
    assert_close(got, naive_vgg_like(net, x, [1, 1])["input"], rtol=1e-12, what="signed input")
    assert got.min() < 0


def test_probability_is_conserved(net, x):
    """Nonnegative inputs: the winning probabilities sum to 1 per image at every layer, all >= 0;
    the contrastive ones sum to 0 (measured, not assumed: a unit with Z_j = 0 would lose P)."""
    for layer in (None, "conv2d_0", "maxpool2d_0", "avgpool2d_0", "dense_0"):
        p = mc.excitation_backprop(net, x, "predicted", layer=layer)
        assert p.min() >= 0
        np.testing.assert_allclose(p.reshape(len(x), -1).sum(axis=1), 1.0, rtol=0, atol=1e-12)
        c = mc.excitation_backprop(net, x, "predicted", layer=layer, contrastive=True)
        np.testing.assert_allclose(c.reshape(len(x), -1).sum(axis=1), 0.0, rtol=0, atol=1e-12)


def test_global_average_pooling_network():
    net = mc.Sequential([mc.Conv2D(1, 3, 3, padding=1), mc.ReLU(), mc.Conv2D(3, 4, 3, padding=1), mc.ReLU(),
                         mc.GlobalAvgPool2D(), mc.Dense(4, 2)], seed=3, dtype=np.float64)  # fmt: skip
    x = np.random.default_rng(4).uniform(0, 1, (2, 1, 6, 6))
    w = [layer.params for layer in net.layers if layer.has_params]
    a1 = np.maximum(conv2d_forward(x, w[0]["weight"], w[0]["bias"], 1, 1), 0)
    a2 = np.maximum(conv2d_forward(a1, w[1]["weight"], w[1]["bias"], 1, 1), 0)
    a3 = a2.mean(axis=(2, 3))
    p = np.eye(2)[[1, 0]]
    p3 = naive_dense(a3, w[2]["weight"], p)[:, :, None, None]
    p2 = naive_avgpool(a2, p3, 6)
    expected = naive_conv(x, w[0]["weight"], naive_conv(a1, w[1]["weight"], p2, 1, 1), 1, 1)
    assert_close(mc.excitation_backprop(net, x, [1, 0]), expected, rtol=1e-12, what="GAP network")


def test_differs_from_the_gradient(net, x):
    """Not gradient x input: the naive comparison above could not pass by the gradient's code."""
    eb = mc.excitation_backprop(net, x, 0)
    gxi = mc.saliency(net, x, 0, signed=True, times_input=True)
    assert np.abs(eb - gxi).max() > 0.1 * np.abs(eb).max()


def test_refusals_are_one_line(net, x):
    bn = mc.Sequential([mc.Conv2D(2, 3, 3), mc.BatchNorm2D(3), mc.ReLU(), mc.Flatten(), mc.Dense(300, 2)],
                       seed=0, dtype=np.float64)  # fmt: skip
    with pytest.raises(MinicnnError, match="takes layers with a weight and a bias") as err:
        mc.excitation_backprop(bn, x, 0)
    assert "\n" not in str(err.value) and "BatchNorm2D" in str(err.value)
    with pytest.raises(MinicnnError, match="unknown layer 'nope'"):
        mc.excitation_backprop(net, x, 0, layer="nope")
    graph = mc.resnet18(seed=0, num_classes=3, input_size=32)
    with pytest.raises(MinicnnError, match="excitation backprop runs on chains of layers"):
        mc.excitation_backprop(graph, np.zeros((1, 3, 32, 32), np.float32), 0)


def test_no_rounding_blow_up_on_the_shipped_model():
    """The shipped digits model (3x3 convolutions that Winograd would lower): a window of zero inputs
    has Z_j exactly 0, so no P / (+-1e-16) reaches the map: every P >= 0 on inputs in [0, 1]."""
    from minicnn.paths import DEFAULT_MODEL, HELDOUT

    with np.load(HELDOUT) as data:
        x = mc.preprocess(data["images"][:6, :, :, None], "unit")
    for dtype in (np.float32, np.float64):
        p = mc.excitation_backprop(mc.load(DEFAULT_MODEL).astype(dtype), x.astype(dtype))
        assert p.min() >= 0 and 0.9 < p.reshape(6, -1).sum(axis=1).min() <= 1 + 1e-6
