"""Smooth and efficient MPRT (Hedstrom et al. 2024) and the random-logit test (Sixt et al. 2020).

Smooth MPRT with one sample is the bottom-up randomisation test itself; its average is the mean of
maps of noisy inputs drawn here by the rule written out; the entropy and the eMPRT score against
Quantus' own discrete_entropy on the same maps; Quantus' defaults are ours; random logit against
maps computed here for the classes it drew.
"""

import numpy as np
import pytest
from support import assert_close

from minicnn.errors import MinicnnError
from minicnn.tools import sanity_mprt as sm
from minicnn.tools.sanity import learned_layers, randomization_test, randomized_networks
from minicnn.tools.sanity_methods import all_attributions
from minicnn.tools.sanity_protocols import compare


@pytest.fixture(scope="module")
def net(make_small_vgg):
    return make_small_vgg(seed=4, size=12, classes=5, gap=True)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).standard_normal((2, 3, 12, 12)).astype(np.float32)


def test_smooth_mprt_with_one_sample_is_the_bottom_up_test(net, images):
    methods = ["gradient", "guided"]
    smooth = sm.smooth_mprt(net, images, "predicted", methods, samples=1, seed=3)
    plain = randomization_test(net, images, "predicted", methods, seed=3, order="bottom-up")
    assert smooth.layers == plain.layers == learned_layers(net)[::-1]  # from the input up
    for m in methods:
        for k, v in plain.similarity[m].items():
            np.testing.assert_allclose(smooth.similarity[m][k], v, rtol=1e-12, atol=1e-15, err_msg=f"{m} {k}")
        assert np.ptp(plain.similarity[m]["spearman_abs"]) > 0.05  # the steps differ: not 1 throughout


def test_smoothed_attributions_average_noisy_copies(net, images):
    samples, noise, seed = 4, 0.1, 9
    span = images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3))
    draws = np.random.default_rng(seed).standard_normal((samples, *images.shape))
    targets = np.array([1, 3])
    expected = 0
    for s in range(samples):
        eps = 0 if s == samples - 1 else draws[s] * noise * span[:, None, None, None]
        xs = (images.astype(np.float64) + eps).astype(np.float32)
        expected = expected + all_attributions(net, xs, targets, ["gradient"])["gradient"] / samples
    eps = sm.input_noise(images, samples, noise, seed)
    got = sm.smoothed_attributions(net, images, targets, ["gradient"], eps)["gradient"]
    assert_close(got, expected, rtol=1e-6)
    assert not np.allclose(got, all_attributions(net, images, targets, ["gradient"])["gradient"], rtol=1e-3)


def test_efficient_mprt_against_quantus_entropy(net, images):
    from frameworks import quantus

    q = quantus()
    from quantus.functions.complexity_func import discrete_entropy

    res = sm.efficient_mprt(net, images, [0, 4], ["gradient", "grad_cam"], seed=2)
    names = learned_layers(net)[::-1]
    random_net = list(randomized_networks(net, names, True, 2))[-1][1]
    for m in ("gradient", "grad_cam"):
        before = all_attributions(net, images, [0, 4], [m])[m].sum(axis=1)
        after = all_attributions(random_net, images, [0, 4], [m])[m].sum(axis=1)
        hb = np.array([discrete_entropy(a=v, x=v, n_bins=100) for v in before])
        ha = np.array([discrete_entropy(a=v, x=v, n_bins=100) for v in after])
        assert_close(res.entropy[m], np.stack([hb, ha]), rtol=1e-9, what=m)
        assert_close(res.score[m], (ha - hb) / hb, rtol=1e-9, what=m)  # Quantus' (b - a) / a
    e = q.EfficientMPRT(disable_warnings=True)
    assert (e.layer_order, e.abs, e.normalise) == ("bottom_up", False, False)
    s = q.SmoothMPRT(disable_warnings=True)
    assert (s.layer_order, s.nr_samples, s.noise_magnitude) == (
        "bottom_up",
        sm.SMOOTH_SAMPLES,
        sm.SMOOTH_NOISE,
    )


def test_random_logit_draws_other_classes_and_compares_their_maps(net, images):
    res = sm.random_logit(net, images, [2, 2], ["gradient", "deconvnet"], seed=5, protocol="adebayo")
    assert np.all(res.others != res.targets) and res.protocol == "adebayo"
    for m in ("gradient", "deconvnet"):
        a = all_attributions(net, images, res.targets, [m])[m]
        b = all_attributions(net, images, res.others, [m])[m]
        expected = {k: v.mean() for k, v in compare(a, b, "adebayo").items()}
        assert res.similarity[m] == pytest.approx(expected, abs=1e-12, nan_ok=True)  # HOG: NaN under 48 px
    drawn = {
        int(c) for s in range(40) for c in sm.random_logit(net, images[:1], [2], ["gradient"], seed=s).others
    }
    assert drawn == {0, 1, 3, 4}  # every other class, never the target


def test_bad_input(net, images):
    with pytest.raises(MinicnnError, match="samples >= 1"):
        sm.smooth_mprt(net, images, samples=0)
    with pytest.raises(MinicnnError, match="at least 2 histogram bins"):
        sm.efficient_mprt(net, images, bins=1)
    with pytest.raises(MinicnnError, match="unknown order 'sideways'"):
        sm.smooth_mprt(net, images, samples=1, order="sideways")
