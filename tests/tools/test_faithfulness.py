"""Faithfulness tools: completeness against hand computations and Quantus, the curve engine against
a naive loop, and bad input refused in one line. (Curves against Quantus and RISE:
test_faithfulness_quantus.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import quantus
from support import biased, oracle
from torch_mirror import to_torch

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.tools.faithfulness import deletion, perturbation_curve, pixel_flipping, pixel_order, step_counts
from minicnn.tools.faithfulness_completeness import completeness
from minicnn.tools.faithfulness_road import road
from minicnn.tools.integrated_gradients import completeness_gap
from minicnn.tools.saliency import class_gradient


def integer_net(bias: bool):
    """A small ReLU/max-pool network with small integer weights (float64): on integer images every
    score and every gradient x input is an integer, so sums are exact in floating point."""
    net = mc.Sequential(
        [mc.Conv2D(1, 3, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2), mc.Flatten(), mc.Dense(3 * 4 * 4, 4)],
        seed=0, meta={"input_shape": [1, 8, 8]}, dtype=np.float64,
    )  # fmt: skip
    rng = np.random.default_rng(1)
    for layer in net.layers:
        if layer.has_params:
            layer.weight = rng.integers(-2, 3, layer.weight.shape).astype(np.float64)
            layer.bias = rng.integers(-2, 3, layer.bias.shape).astype(np.float64) if bias else 0 * layer.bias
    return net


@pytest.fixture(scope="module")
def integer_images():
    return np.random.default_rng(2).integers(0, 4, (5, 1, 8, 8)).astype(np.float64)


def test_gradient_x_input_is_complete_without_biases_and_not_with(integer_images):
    x = integer_images
    for bias, complete in ((False, True), (True, False)):
        net = integer_net(bias)
        y = np.asarray(net.forward(x)).argmax(axis=1)
        gxi = np.asarray(class_gradient(net, x, y)) * x
        gap = completeness_gap(net, x, gxi, y)
        scores = np.asarray(net.forward(x))[np.arange(5), y]
        zero = np.asarray(net.forward(np.zeros_like(x)))[np.arange(5), y]
        np.testing.assert_array_equal(gap, gxi.reshape(5, -1).sum(axis=1) - (scores - zero))
        if complete:
            np.testing.assert_array_equal(gap, 0)  # Euler: S(x) = grad S(x) . x, S(0) = 0
        else:
            assert np.abs(gap).max() >= 1


def test_completeness_agrees_with_quantus(integer_images):
    """Quantus' Completeness says whether sum(a) == S(x) - S(0) exactly; on integers both are
    exact, so its verdict is gap == 0, also when one attribution is made wrong by 1."""
    q = quantus()
    x = integer_images
    net = integer_net(bias=False)
    y = np.asarray(net.forward(x)).argmax(axis=1)
    gxi = np.asarray(class_gradient(net, x, y)) * x
    broken = gxi.copy()
    broken[2, 0, 3, 3] += 1
    metric = q.Completeness(normalise=False, abs=False, perturb_baseline=0.0, disable_warnings=True)
    model = to_torch(net, oracle("torch").float32)  # Quantus feeds torch.Tensor(x): float32, exact here
    verdicts = []
    for maps in (gxi, broken):
        verdict = metric(model=model, x_batch=x, y_batch=y, a_batch=maps, softmax=False, device="cpu")
        assert list(verdict) == list(completeness_gap(net, x, maps, y) == 0)
        verdicts.append(list(verdict))
    assert verdicts == [[True] * 5, [True, True, False, True, True]]
    assert completeness_gap(net, x, broken, y)[2] == 1


def test_integrated_gradients_row_closes_its_gap_and_a_claimless_method_is_refused(make_small_vgg):
    net = biased(make_small_vgg(seed=3, channels=1, size=8, classes=3))  # with biases: IG is not exact
    x = np.random.default_rng(5).random((2, 1, 8, 8))
    y = np.asarray(net.forward(x)).argmax(axis=1)
    coarse, fine = (
        completeness(net, x, ["ig"], y, **{"integrated-gradients": {"steps": s}})[0] for s in (2, 200)
    )
    assert fine.method == "integrated-gradients" and fine.claim == "F(x) - F(baseline)"
    scores = np.asarray(net.forward(x))[np.arange(2), y]
    zero = np.asarray(net.forward(np.zeros_like(x)))[np.arange(2), y]
    np.testing.assert_allclose(fine.claimed, scores - zero, rtol=1e-12)
    np.testing.assert_allclose(fine.gap, fine.total - fine.claimed, rtol=1e-12)
    # the path crosses ReLU kinks, so the quadrature's error falls slowly, but it falls
    assert fine.relative.max() < 1e-3 and coarse.relative.max() > 10 * fine.relative.max()
    with pytest.raises(MinicnnError, match="gradient claims no completeness"):
        completeness(net, x, ["gradient"], y)


def test_curve_engine_equals_a_naive_loop(make_small_vgg):
    net = make_small_vgg(seed=2, channels=2, size=8, classes=3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 8, 8))
    start, finish = x, rng.standard_normal(x.shape)
    maps = rng.standard_normal((2, 8, 8))
    order = pixel_order(maps)
    counts = step_counts(64, 10)
    targets = np.array([0, 2])
    curves, predicted = perturbation_curve(net, start, finish, order, counts, targets, "score", batch_size=5)
    for i in range(2):
        for s, count in enumerate(counts):
            img = start[i].copy()
            for p in np.argsort(-maps[i].ravel())[:count]:  # distinct values: any sort agrees
                img[:, p // 8, p % 8] = finish[i][:, p // 8, p % 8]
            scores = np.asarray(net.forward(img[None].astype(np.float32)))[0]
            assert abs(curves[i, s] - scores[targets[i]]) < 1e-5
            assert predicted[i, s] == scores.argmax()


def test_ties_keep_pixel_order():
    maps = np.zeros((1, 2, 3))
    maps[0, 1, 2] = 1.0
    np.testing.assert_array_equal(pixel_order(maps), [[5, 0, 1, 2, 3, 4]])
    np.testing.assert_array_equal(pixel_order(maps, most_relevant_first=False), [[0, 1, 2, 3, 4, 5]])


def test_bad_input_is_one_line(make_small_vgg):
    net = make_small_vgg(seed=0, channels=1, size=8, classes=3)
    x = np.zeros((2, 1, 8, 8), np.float32)
    maps = np.zeros((2, 8, 8))
    cases = [
        (lambda: deletion(net, x, np.zeros((2, 7, 8)), 0), "expected maps (N, H, W)"),
        (lambda: deletion(net, x, maps * np.nan, 0), "NaN"),
        (lambda: deletion(net, x, maps, 0, step=0), "step must be a positive"),
        (lambda: deletion(net, x, maps, 0, output="logit"), "output must be one of"),
        (lambda: pixel_flipping(net, x, maps, 0, baseline="white"), "baseline must be 'black'"),
        (lambda: road(net, x, maps, 0, fractions=[0.5, 1.0]), "fractions must be values in [0, 1)"),
        (lambda: road(net, x, maps, 0, order="random"), "order must be one of"),
        (lambda: road(net, x, maps, 0, noise=-1), "noise must be a non-negative"),
        (lambda: completeness(net, x, ["no-such-method"], 0), "unknown method"),
    ]
    for call, words in cases:
        with pytest.raises(MinicnnError) as err:
            call()
        assert words in str(err.value) and "\n" not in str(err.value)
