"""Two more questions about what a saliency map shows: does it depend on the class, and is it just
the image?

Class sensitivity (Nie, Zhang & Patel 2018, "A Theoretical Explanation for Perplexing Behaviors of
Backpropagation-based Visualizations", sec. 5): an explanation of class c should change when c
changes. For each image the maps of several classes are compared pairwise with the similarity
measures of Adebayo et al. (sanity_similarity.py); a mean similarity near 1 means the method shows
the same map whatever the class. Nie et al. prove that guided backpropagation and the DeconvNet
do (they reconstruct the image), while the gradient does not.

Image recovery (Mahendran & Vedaldi 2016, "Salient Deconvolutional Networks", sec. 4; Nie et al.
2018, sec. 4): the similarity of a map to the input image itself (channels summed, scaled to
[0, 1]), on the trained network and on a randomly initialised copy of it. A map that is as close
to the image on a random network as on the trained one is telling about the image, not the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.tools.sanity import learned_layers, reinitialize, working_copy
from minicnn.tools.sanity_methods import all_attributions, all_maps, check_methods
from minicnn.tools.sanity_protocols import DEFAULT_PROTOCOL, check_protocol, compare, measures
from minicnn.tools.sanity_similarity import similarities
from minicnn.tools.targets import as_batch, forward_record, resolve_targets


@dataclass
class ClassSensitivityResult:
    """classes: (N, K) the classes compared for each image (the K highest scores, or those given);
    similarity[method][measure]: mean over images and class pairs (1 = class-insensitive) under
    ``protocol`` (sanity_protocols.measures)."""

    methods: list
    classes: np.ndarray
    similarity: dict
    protocol: str = DEFAULT_PROTOCOL


def class_sensitivity(net, x, methods=("gradient", "guided"), classes=None, top: int = 3, seed: int = 0,
                      record=None, protocol: str = DEFAULT_PROTOCOL) -> ClassSensitivityResult:  # fmt: skip
    """Mean similarity of the maps of different classes of the same image.

    x: (N, C, H, W) or (C, H, W) in network-input space. classes: a list of class indices used for
    every image, or None: each image's ``top`` highest-scoring classes (its prediction and the
    runners-up, the classes a user would ask about). seed: SmoothGrad's noise. protocol: how the
    maps are compared (sanity_protocols.PROTOCOLS).
    """
    protocol = check_protocol(protocol)
    methods = check_methods(net, methods)
    x = as_batch(net, x)
    rec = forward_record(net, x, record)
    scores = to_numpy(rec.output())
    if classes is None:
        if not 2 <= top <= scores.shape[1]:
            raise MinicnnError(f"top must be between 2 and the {scores.shape[1]} classes, got {top}")
        chosen = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    else:
        if len(classes) < 2:
            raise MinicnnError("class sensitivity needs at least two classes")
        chosen = np.stack(
            [resolve_targets(list(classes), np.zeros((len(classes), scores.shape[1])))] * len(x)
        )
    per_class = [all_attributions(net, x, chosen[:, k], methods, seed, rec) for k in range(chosen.shape[1])]
    sims = {}
    for m in methods:
        pairs = [
            compare(per_class[a][m], per_class[b][m], protocol)
            for a, b in combinations(range(len(per_class)), 2)
        ]
        sims[m] = {k: float(np.mean([p[k] for p in pairs])) for k in measures(protocol)}
    return ClassSensitivityResult(methods, chosen, sims, protocol)


@dataclass
class RecoveryResult:
    """similarity[network][method][metric]: mean over images of the similarity of the map with the
    input image, for network "trained" and "random" (every learned layer re-initialised)."""

    methods: list
    targets: np.ndarray
    similarity: dict


def image_grey(x) -> np.ndarray:
    """x (N, C, H, W) -> (N, H, W) float64: channels summed, each image scaled to [0, 1]."""
    g = to_numpy(x).astype(np.float64).sum(axis=1)
    lo = g.min(axis=(1, 2), keepdims=True)
    span = g.max(axis=(1, 2), keepdims=True) - lo
    return (g - lo) / np.where(span > 0, span, 1.0)


def image_recovery(net, x, target="predicted", methods=("gradient", "guided"), seed: int = 0,
                   record=None) -> RecoveryResult:  # fmt: skip
    """How much each method's map looks like the input image, on the trained network and on a copy
    with every learned layer re-initialised (seeded as in the randomisation test).

    x: (N, C, H, W) or (C, H, W); target: class index, list or "predicted" (the trained network's,
    kept for the random one).
    """
    methods = check_methods(net, methods)
    x = as_batch(net, x)
    rec = forward_record(net, x, record)
    targets = resolve_targets(target, rec.output())
    grey = image_grey(x)
    random_net = working_copy(net)
    for name in learned_layers(net):
        reinitialize(random_net, name, seed)
    out = {}
    for label, model, r in (("trained", net, rec), ("random", random_net, None)):
        maps = all_maps(model, x, targets, methods, seed, r)
        out[label] = {
            m: {k: float(v.mean()) for k, v in similarities(maps[m], grey).items()} for m in methods
        }
    return RecoveryResult(methods, targets, out)
