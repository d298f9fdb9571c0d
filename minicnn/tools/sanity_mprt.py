"""Repairs of the model parameter randomisation test, and the random-logit test.

Smooth MPRT (Hedstrom et al. 2024, "Sanity Checks Revisited: An Exploration to Repair the Model
Parameter Randomisation Test", sec. 4.1): gradient-like maps are noisy, and noise alone lowers the
similarity of two maps. Each explanation is first averaged over ``samples`` copies of the input with
Gaussian noise of standard deviation ``noise`` x (max - min) of the image; the last copy is the image
itself, as in Quantus' SmoothMPRT. The layers are then randomised from the bottom up, cumulatively
(their default), and the averaged maps compared as in ``sanity.randomization_test``.

Efficient MPRT (Hedstrom et al. 2024, sec. 4.2): instead of comparing two maps, measure how much
more complex the explanation becomes once every learned layer is re-initialised:

    eMPRT = (H(e_random) - H(e_trained)) / H(e_trained)

H is the discrete entropy (natural log) of the histogram, in ``bins`` bins, of the explanation's
values (the channel sum, signed, not normalised: Quantus' defaults). Higher is better: a map that
explains the network turns into noise when the network is noise.

Random logit (Sixt, Granz & Landgraf 2020, "When Explanations Lie", sec. 5): the explanation of the
predicted class compared with that of a class drawn at random among the others; a map that stays
alike does not depend on the class (Quantus' RandomLogit compares by SSIM; here every measure of
the chosen protocol is given).

The randomised networks are ``sanity.randomized_networks``'s (the same seeded weights as the
randomisation test); the noise is drawn once from ``seed`` and used for every network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.tools.sanity import RandomizationResult, check_layers, gathered, randomized_networks
from minicnn.tools.sanity_methods import all_attributions, check_methods
from minicnn.tools.sanity_protocols import DEFAULT_PROTOCOL, check_protocol, compare
from minicnn.tools.targets import as_batch, forward_record, resolve_targets

SMOOTH_SAMPLES = 50  # Hedstrom et al.'s ImageNet setting (Quantus' default)
SMOOTH_NOISE = 0.1
ENTROPY_BINS = 100  # Quantus' discrete_entropy default


def input_noise(x, samples: int, noise: float, seed: int) -> np.ndarray:
    """(samples, N, C, H, W) float64 noise: N(0, (noise * (max - min of each image))^2), the last
    sample all zero (the image itself)."""
    x = np.asarray(to_numpy(x), np.float64)
    span = x.max(axis=(1, 2, 3), keepdims=True) - x.min(axis=(1, 2, 3), keepdims=True)
    eps = np.random.default_rng(seed).standard_normal((samples, *x.shape)) * (noise * span)
    eps[-1] = 0.0
    return eps


def smoothed_attributions(net, x, targets, methods, eps, seed: int = 0) -> dict:
    """{method: (N, C, H, W)}: the mean of ``all_attributions`` over x + eps[s] for every sample s."""
    total = None
    for e in eps:
        xe = net.xp.asarray(to_numpy(x) + e, dtype=net.dtype)
        a = all_attributions(net, xe, targets, methods, seed)
        total = a if total is None else {m: total[m] + a[m] for m in methods}
    return {m: v / len(eps) for m, v in total.items()}


def smooth_mprt(net, x, target="predicted", methods=("gradient", "guided"), samples: int = SMOOTH_SAMPLES,
                noise: float = SMOOTH_NOISE, order: str = "bottom-up", cascade: bool = True, seed: int = 0,
                layers=None, protocol: str = DEFAULT_PROTOCOL) -> RandomizationResult:  # fmt: skip
    """The randomisation test on explanations averaged over noisy copies of the input.

    x: (N, C, H, W) or (C, H, W); target: class index, list or "predicted" (the trained network's,
    kept at every step); samples, noise: the average (see the module docstring); order, cascade,
    layers, protocol: as ``sanity.randomization_test``. Returns its RandomizationResult (maps: the
    averaged maps, channels summed).
    """
    if samples < 1 or noise < 0:
        raise MinicnnError(f"smooth MPRT needs samples >= 1 and noise >= 0, got {samples} and {noise}")
    methods = check_methods(net, methods)
    protocol = check_protocol(protocol)
    names = check_layers(net, layers, order)
    x = as_batch(net, x)
    targets = resolve_targets(target, forward_record(net, x).output())
    eps = input_noise(x, samples, noise, seed)
    trained = smoothed_attributions(net, x, targets, methods, eps, seed)
    maps = {m: [a.sum(axis=1)] for m, a in trained.items()}
    per = {m: [compare(a, a, protocol)] for m, a in trained.items()}
    for _name, randomized in randomized_networks(net, names, cascade, seed):
        for m, a in smoothed_attributions(randomized, x, targets, methods, eps, seed).items():
            maps[m].append(a.sum(axis=1))
            per[m].append(compare(trained[m], a, protocol))
    return gathered(names, methods, cascade, seed, targets, maps, per, protocol, order)


def discrete_entropy(values, bins: int = ENTROPY_BINS) -> float:
    """Entropy (nats) of the histogram of ``values`` in ``bins`` equal bins over their range."""
    counts, _ = np.histogram(np.ravel(values), bins=bins)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


@dataclass
class EfficientMPRTResult:
    """entropy[method]: (2, N) the entropy of each image's map on the trained network (row 0) and on
    the fully randomised one (row 1); score[method]: (N,) the relative rise; mean[method]: its mean."""

    methods: list
    layers: list
    entropy: dict
    score: dict
    mean: dict


def efficient_mprt(net, x, target="predicted", methods=("gradient", "guided"), bins: int = ENTROPY_BINS,
                   seed: int = 0, record=None) -> EfficientMPRTResult:  # fmt: skip
    """The relative rise in explanation entropy when every learned layer is re-initialised.

    x: (N, C, H, W) or (C, H, W); target: class index, list or "predicted" (the trained network's).
    """
    if bins < 2:
        raise MinicnnError(f"efficient MPRT needs at least 2 histogram bins, got {bins}")
    methods = check_methods(net, methods)
    names = check_layers(net, None, "bottom-up")
    x = as_batch(net, x)
    rec = forward_record(net, x, record)
    targets = resolve_targets(target, rec.output())
    before = all_attributions(net, x, targets, methods, seed, rec)
    randomized = list(randomized_networks(net, names, True, seed))[-1][
        1
    ]  # every learned layer re-initialised
    after = all_attributions(randomized, x, targets, methods, seed)
    entropy, score = {}, {}
    for m in methods:
        h = np.array([[discrete_entropy(a.sum(axis=0), bins) for a in v[m]] for v in (before, after)])
        entropy[m] = h
        score[m] = (h[1] - h[0]) / np.where(h[0] > 0, h[0], np.nan)
    return EfficientMPRTResult(
        methods, names, entropy, score, {m: float(np.nanmean(s)) for m, s in score.items()}
    )


@dataclass
class RandomLogitResult:
    """targets, others: (N,) the explained class and the random other class of each image;
    similarity[method][measure]: mean over images under ``protocol``."""

    methods: list
    targets: np.ndarray
    others: np.ndarray
    similarity: dict
    protocol: str


def random_logit(net, x, target="predicted", methods=("gradient", "guided"), seed: int = 0,
                 protocol: str = DEFAULT_PROTOCOL, record=None) -> RandomLogitResult:  # fmt: skip
    """Compare each image's map for ``target`` with its map for a random other class (drawn
    uniformly among the other classes from ``seed``)."""
    methods = check_methods(net, methods)
    protocol = check_protocol(protocol)
    x = as_batch(net, x)
    rec = forward_record(net, x, record)
    scores = to_numpy(rec.output())
    targets = resolve_targets(target, scores)
    classes = scores.shape[1]
    if classes < 2:
        raise MinicnnError("the random-logit test needs a network with at least two classes")
    draw = np.random.default_rng(seed).integers(0, classes - 1, len(targets))
    others = draw + (draw >= targets)  # uniform over the classes other than the target
    first = all_attributions(net, x, targets, methods, seed, rec)
    second = all_attributions(net, x, others, methods, seed, rec)
    sims = {
        m: {k: float(v.mean()) for k, v in compare(first[m], second[m], protocol).items()} for m in methods
    }
    return RandomLogitResult(methods, np.asarray(targets), others, sims, protocol)
