"""Faithfulness curves against Quantus 0.6 on the same maps, and against naive loops of RISE's
algorithm (Petsiuk et al. 2018) written here from the paper.

Quantus runs the torch mirror of the network (float32); the curves agree to 1e-5. The convention
differences (Quantus' curve has no unperturbed point; its AUC is numpy.trapz with dx=1) are each
checked to be exactly that difference.
"""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import quantus
from support import oracle
from torch_mirror import to_torch

from minicnn.tools.faithfulness import (
    deletion,
    insertion,
    patch_pixel_order,
    pixel_flipping,
    region_perturbation,
    rise_kernel,
)
from minicnn.tools.faithfulness_road import linear_imputation, road
from minicnn.tools.saliency import class_gradient

N = 6


@pytest.fixture(scope="module")
def digits(digit_net, make_digit_images):
    """Six held-out digits, their predicted classes and gradient x input maps with distinct values
    (a tiny seeded jitter breaks the exact-zero ties, so both libraries' orders are the same)."""
    x = make_digit_images(digit_net, n=N, seed=4)
    y = np.asarray(digit_net.forward(x)).argmax(axis=1)
    grad = np.asarray(class_gradient(digit_net, x, y)).astype(np.float64)
    maps = (grad * x).sum(axis=1) + 1e-9 * np.random.default_rng(0).random((N, 28, 28))
    assert len(np.unique(maps)) == maps.size
    return x, y, maps


def _quantus_run(metric, net, x, y, maps):
    a = maps[:, None].astype(np.float32)
    return metric(
        model=to_torch(net), x_batch=np.asarray(x), y_batch=y, a_batch=a, softmax=True, device="cpu"
    )


@pytest.mark.parametrize("baseline", ["black", 0.0])
def test_pixel_flipping_equals_quantus(digit_net, digits, baseline, monkeypatch):
    q = quantus()
    # Quantus 0.6's calculate_auc calls numpy.trapz, which NumPy 2.4 removed; trapezoid is the same
    # function under its current name
    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)
    x, y, maps = digits
    ours = pixel_flipping(digit_net, x, maps, y, step=16, baseline=baseline)
    kw = dict(
        features_in_step=16, perturb_baseline=baseline, normalise=False, abs=False, disable_warnings=True
    )
    theirs = np.asarray(_quantus_run(q.PixelFlipping(**kw), digit_net, x, y, maps))
    # convention: Quantus' curve starts after the first step; ours has the unperturbed image first
    assert theirs.shape == (N, ours.curves.shape[1] - 1)
    np.testing.assert_allclose(ours.curves[:, 1:], theirs, atol=1e-5)
    assert np.ptp(theirs) > 0.5  # the probability really falls along the curve
    auc = np.asarray(_quantus_run(q.PixelFlipping(**kw, return_auc_per_sample=True), digit_net, x, y, maps))
    # convention: Quantus integrates its S - 1 points with dx = 1; ours integrates S points over [0, 1]
    s = ours.curves.shape[1]
    expected = (s - 1) * ours.auc - (ours.curves[:, 0] + ours.curves[:, 1]) / 2
    np.testing.assert_allclose(auc, expected, atol=1e-4)
    assert np.abs(auc - (s - 1) * ours.auc).max() > 0.1  # the correction is not negligible


def test_deletion_is_quantus_pixel_flipping_with_zero_and_a_row_per_step(digit_net, digits):
    q = quantus()
    x, y, maps = digits
    ours = deletion(digit_net, x, maps, y)
    assert ours.settings["step"] == 28 and ours.curves.shape == (N, 29)
    metric = q.PixelFlipping(
        features_in_step=28, perturb_baseline=0.0, normalise=False, disable_warnings=True
    )
    np.testing.assert_allclose(ours.curves[:, 1:], _quantus_run(metric, digit_net, x, y, maps), atol=1e-5)


def _naive_rise(torch_model, image, saliency, target, start, finish, step):
    """RISE's causal metric as the paper describes it (sec. 4.1), one image at a time: the pixels in
    decreasing saliency order move from ``start`` to ``finish``, ``step`` per point; the area is
    (sum - first / 2 - last / 2) / (points - 1)."""
    torch = oracle("torch")
    hw = saliency.size
    order = np.argsort(-saliency.ravel(), kind="stable")
    steps = (hw + step - 1) // step
    current = start.copy()
    scores = []
    for i in range(steps + 1):
        with torch.no_grad():
            prob = torch.softmax(torch_model(torch.from_numpy(current[None].astype(np.float32))), dim=1)
        scores.append(float(prob[0, target]))
        idx = order[i * step : (i + 1) * step]
        flat_cur, flat_fin = current.reshape(current.shape[0], -1), finish.reshape(finish.shape[0], -1)
        flat_cur[:, idx] = flat_fin[:, idx]
    scores = np.asarray(scores)
    return scores, (scores.sum() - scores[0] / 2 - scores[-1] / 2) / (len(scores) - 1)


def _torch_blur(x):
    """RISE's blur as its authors apply it: a torch conv2d with padding 5 and the kernel from the
    normal distribution's CDF (SciPy), a separate reference for ``rise_blur``."""
    torch = oracle("torch")
    from scipy.stats import norm

    edges = np.linspace(-5, 5, 12)
    k1 = np.diff(norm.cdf(edges))
    k2 = np.outer(k1, k1)
    k2 /= k2.sum()
    np.testing.assert_allclose(rise_kernel(), k2, rtol=0, atol=1e-15)  # erf tails vs norm.cdf
    c = x.shape[1]
    weight = torch.zeros(c, c, 11, 11, dtype=torch.float64)
    for i in range(c):
        weight[i, i] = torch.from_numpy(k2)
    return torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64)), weight, padding=5).numpy()


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_rise_curves_equal_a_naive_loop(digit_net, digits, kind):
    x, y, maps = digits
    model = to_torch(digit_net)
    xh = np.asarray(x, dtype=np.float64)
    if kind == "deletion":
        ours = deletion(digit_net, x, maps, y, step=28)
        starts, finishes = xh, np.zeros_like(xh)
    else:
        ours = insertion(digit_net, x, maps, y, step=28)
        starts, finishes = _torch_blur(xh), xh
    for i in range(N):
        curve, auc = _naive_rise(model, starts[i], maps[i], y[i], starts[i], finishes[i], 28)
        np.testing.assert_allclose(ours.curves[i], curve, atol=1e-5)
        assert abs(ours.auc[i] - auc) < 1e-5
    assert np.ptp(ours.curves) > 0.5


def test_ragged_last_step_keeps_the_true_fractions(digit_net, digits):
    x, y, maps = digits
    ours = deletion(digit_net, x, maps, y, step=100)  # 784 = 7 * 100 + 84
    np.testing.assert_array_equal(ours.fractions * 784, [0, 100, 200, 300, 400, 500, 600, 700, 784])
    area = np.trapezoid(ours.curves, ours.fractions, axis=1)
    np.testing.assert_allclose(ours.auc, area, rtol=1e-12)


def test_linear_imputation_equals_quantus():
    quantus()
    from quantus.functions.perturb_func import noisy_linear_imputation

    rng = np.random.default_rng(0)
    image = rng.random((3, 7, 9))
    ids = np.sort(rng.choice(63, 40, replace=False))
    mask = np.zeros(63, dtype=bool)
    mask[ids] = True
    ours = linear_imputation(image, mask.reshape(7, 9))
    np.testing.assert_allclose(ours, noisy_linear_imputation(image, ids, noise=0.0), atol=1e-12)
    assert np.abs(ours - image).max() > 0.1
    # each removed pixel is the weighted mean of its neighbours (an independent check of the system)
    y, x_ = divmod(int(ids[np.argmax([min(i // 9, 6 - i // 9, i % 9, 8 - i % 9) for i in ids])]), 9)
    weights = {(dy, dx): (1 / 6 if dy == 0 or dx == 0 else 1 / 12) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    del weights[(0, 0)]
    mean = sum(w * ours[:, y + dy, x_ + dx] for (dy, dx), w in weights.items())
    np.testing.assert_allclose(ours[:, y, x_], mean, atol=1e-12)


def test_road_equals_quantus_without_noise(digit_net, digits):
    q = quantus()
    x, y, maps = digits
    percentages = [10, 30, 50, 70, 90]
    ours = road(digit_net, x, maps, y, fractions=[p / 100 for p in percentages], noise=0.0)
    metric = q.ROAD(percentages=percentages, noise=0.0, normalise=False, disable_warnings=True)
    _quantus_run(metric, digit_net, x, y, maps)
    theirs = np.asarray([metric.evaluation_scores[p] for p in percentages])
    np.testing.assert_allclose(ours.correct.mean(axis=0), theirs, atol=1e-12)
    assert 0 < theirs.min() < 1  # some images keep their class, some lose it
    assert np.ptp(ours.curves, axis=1).max() > 0.3  # and the probabilities move along the curve


def test_road_lerf_is_morf_of_the_reversed_map(digit_net, digits):
    x, y, maps = digits
    lerf = road(digit_net, x, maps, y, fractions=[0.2, 0.6], order="lerf", noise=0.0)
    morf_neg = road(digit_net, x, -maps, y, fractions=[0.2, 0.6], order="morf", noise=0.0)
    np.testing.assert_array_equal(lerf.curves, morf_neg.curves)
    morf = road(digit_net, x, maps, y, fractions=[0.2, 0.6], order="morf", noise=0.0)
    assert np.abs(morf.curves - lerf.curves).max() > 0.1


def test_road_noise_is_seeded(digit_net, digits):
    x, y, maps = digits
    a = road(digit_net, x[:2], maps[:2], y[:2], fractions=[0.5], noise=0.05, seed=3)
    b = road(digit_net, x[:2], maps[:2], y[:2], fractions=[0.5], noise=0.05, seed=3)
    c = road(digit_net, x[:2], maps[:2], y[:2], fractions=[0.5], noise=0.05, seed=4)
    np.testing.assert_array_equal(a.curves, b.curves)
    assert np.abs(a.curves - c.curves).max() > 0


@pytest.mark.parametrize("order, baseline", [("morf", "black"), ("lerf", 0.0), ("morf", 0.5)])
def test_region_perturbation_equals_quantus(digit_net, digits, order, baseline):
    q = quantus()
    x, y, maps = digits
    ours = region_perturbation(digit_net, x, maps, y, patch=4, order=order, baseline=baseline)
    assert ours.curves.shape == (N, 50)  # 49 squares of 4x4 and the unperturbed image
    metric = q.RegionPerturbation(patch_size=4, order=order, regions_evaluation=49, perturb_baseline=baseline,
                                  normalise=False, abs=False, disable_warnings=True)  # fmt: skip
    theirs = np.asarray(_quantus_run(metric, digit_net, x, y, maps))
    # convention: Quantus' curve is the drop from the unperturbed probability, without that point
    np.testing.assert_allclose(ours.curves[:, :1] - ours.curves[:, 1:], theirs, atol=1e-5)
    assert np.ptp(theirs) > 0.3


def test_patch_order_equals_a_naive_ranking():
    maps = np.random.default_rng(1).random((2, 6, 9))
    got = patch_pixel_order(maps, 3)
    for i in range(2):
        squares = [(r, c) for r in range(2) for c in range(3)]
        sums = [maps[i, 3 * r : 3 * r + 3, 3 * c : 3 * c + 3].sum() for r, c in squares]
        want = []
        for s in np.argsort(-np.asarray(sums)):
            r, c = squares[s]
            want += [(3 * r + dy) * 9 + 3 * c + dx for dy in range(3) for dx in range(3)]
        assert got[i].tolist() == want
