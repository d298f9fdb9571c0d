"""Hypotheses about the question the other framework answered: another input, class, objective or
method, or another backward rule at some ReLUs. Each recomputes minicnn's map under the changed
question (``tools/diagnosis_maps.method_map``) and yields ``(cause, detail, candidate, None)``
candidates as in ``tools/diagnosis_arrays``; the docstring of each names the framework habit or
issue it comes from. Methods that minicnn does not recompute here (occlusion) yield nothing.
"""

from __future__ import annotations

import numpy as np

from minicnn.io.preprocess import CONVENTIONS
from minicnn.rules import MODES
from minicnn.tools.diagnosis_maps import (
    OBJECTIVES,
    RULE_OF,
    flipped_decisions,
    from_pixels,
    method_map,
    pixel_jacobian,
    to_pixels,
)

#: at most this many single ReLUs are tried one by one (a VGG16 has 15)
SINGLE_RELUS = 40
#: at most this many other classes are tried (the highest-scoring ones, and class 0)
OTHER_CLASSES = 10


def preprocessing(case):
    """The map was made for the same pixels preprocessed by another convention (Keras' caffe
    BGR-minus-mean against torchvision's mean/std: ``preprocess_input`` of the wrong family), or
    it is the gradient with respect to the pixels (before the mean/std step) rather than the
    network input (Captum and tf-keras-vis attribute whatever tensor they are given)."""
    if case.method not in RULE_OF or case.x.shape[1] != 3:
        return
    own = case.net.meta.get("preprocess", "none")
    pixels = to_pixels(case.x, own)
    for other in CONVENTIONS:
        if other == own:
            continue
        x = case.as_input(from_pixels(pixels, other))
        yield "preprocessing", f"the input preprocessed as {other!r} instead of {own!r}", case.map(x=x), None
    if case.method in ("gradient", "gradient_x_input") and own in ("torch", "unit"):
        factor = pixel_jacobian(own, 3)[:, None, None]
        yield (
            "preprocessing",
            f"the gradient at the 0..255 pixels, before the {own!r} step",
            case.ours * factor,
            None,
        )
        yield (
            "preprocessing",
            f"the gradient at 0..1 pixels, before the {own!r} step",
            case.ours * factor * 255,
            None,
        )


def channel_order(case):
    """The input's colour channels were reversed before the map was made (an OpenCV BGR image fed
    to an RGB model, or an RGB image to Keras' BGR caffe model), with the map given back in
    either order."""
    if case.method not in RULE_OF or case.x.shape[1] != 3:
        return
    swapped = case.map(x=case.as_input(np.asarray(case.x_host[:, ::-1])))
    yield "channel-order", "the map of the input with its channels reversed (BGR <-> RGB)", swapped, None
    if swapped.ndim == 4:
        yield "channel-order", "the input's channels reversed, and the map's back", swapped[:, ::-1], None


def target(case):
    """The map explains another class: the target left out (pytorch-grad-cam and tf-keras-vis then
    take the predicted class, Captum's ``target=None`` sums or takes output 0), a 1-based class
    index, the predicted class of a differently preprocessed image, or one image's class for the
    whole batch."""
    if case.method not in RULE_OF:
        return
    scores = case.scores
    n, k = scores.shape
    ranked = list(np.argsort(-scores.mean(axis=0))[:OTHER_CLASSES])
    classes = sorted({int(c) for c in [*ranked, 0]})
    maps = {c: case.map(targets=np.full(n, c)) for c in classes}
    for c, m in maps.items():
        if (case.targets != c).any():
            yield "target", f"the map of class {c} for every image (targets {case.targets.tolist()})", m, None
    if n > 1:
        best = []
        for i in range(n):
            cost = {c: np.abs(m[i] - case.reference[i]).max() for c, m in maps.items()}
            best.append(min(cost, key=cost.get))
        if best != case.targets.tolist() and len(set(best)) > 1:
            mixed = np.stack([maps[c][i] for i, c in enumerate(best)])
            yield "target", f"classes {best} instead of {case.targets.tolist()}", mixed, None
        shifted = np.roll(case.targets, 1)
        if (shifted != case.targets).any():
            yield (
                "target",
                f"each image explained for the previous image's class {shifted.tolist()}",
                (case.map(targets=shifted)),
                None,
            )


def softmax(case):
    """The map explains the softmax probability (or its log) instead of the class score: a model
    whose last layer is a softmax (Keras applications' default ``classifier_activation``; models
    saved with ``nn.Softmax``) without tf-keras-vis' ``ReplaceToLinear``, or a score function
    written on probabilities. Simonyan et al. (2013, sec. 3) explain the unnormalised score."""
    if case.method not in RULE_OF:
        return
    for objective in OBJECTIVES[1:]:
        words = "probability p_t" if objective == "softmax" else "log-probability log p_t"
        yield (
            "softmax",
            f"the map of the softmax {words} instead of the score",
            case.map(objective=objective),
            None,
        )


#: methods the ``method`` hypothesis does not recompute: one forward pass per occluder position,
#: random samples (a SmoothGrad map is never reproduced), or a map of a unit rather than a class
SLOW_OR_RANDOM = ("occlusion", "smoothgrad", "reconstruct")


def method(case):
    """The map is another method's: a gradient x input map given for a gradient, guided
    backpropagation for DeconvNet, Captum's ``Saliency`` given for Grad-CAM's guided half, an
    Integrated Gradients map for a gradient x input (equal for a piecewise-linear network along
    the path only)... every method of the registry (tools/methods.py) that ``case.methods`` names."""
    for other in case.methods:
        if other == case.method or other in SLOW_OR_RANDOM:
            continue
        m = case.map(method=other) if other in RULE_OF else case.registry_map(other)
        if m is not None:
            yield "method", f"minicnn's {other} map", m, None


def stale_state(case):
    """The map equals the map of the method run before it on the same input: Captum 0.9's
    GuidedBackprop called after Deconvolution on the same input tensor returns the Deconvolution
    map (the hooks' state is kept on the tensor), when the model starts with a ReLU."""
    earlier = {"guided": "deconvnet"}.get(case.method)  # the other order leaves no state (measured)
    if earlier is not None:
        yield (
            "stale-state",
            f"the {earlier} map, as left by a {earlier} call on the same input tensor",
            (case.map(method=earlier)),
            None,
        )


def _relus(net):
    """The ReLU layers of a chain, by index; [] for a graph (rules at chosen ReLUs need a chain)."""
    if not net.is_chain:
        return []
    return [i for i, layer in enumerate(net.layers) if layer.is_rectifier]


def _runs(net, relus):
    """Runs of two or more ReLUs in a row (layers that are the identity at inference between
    them do not break a run): [[i, j, ...], ...]."""
    runs, current = [], []
    for i in relus:
        between = net.layers[current[-1] + 1 : i] if current else []
        if current and all(layer.is_identity_at_inference for layer in between):
            current.append(i)
        else:
            if len(current) > 1:
                runs.append(current)
            current = [i]
    return runs + ([current] if len(current) > 1 else [])


def _span(net, indices) -> str:
    names = [net.layers[i].name for i in indices]
    return names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}"


def relu_rule(case):
    """Another backward rule at one ReLU or at a run of consecutive ReLUs: Captum 0.9's
    Deconvolution through two consecutive ReLUs equals DeconvNet with the guided rule at that
    pair (its hooks of the second ReLU see the first one's output grad_input)."""
    base = RULE_OF.get(case.method)
    if base is None or case.method == "grad_cam":
        return
    relus = _relus(case.net)
    groups = _runs(case.net, relus) + ([[i] for i in relus] if len(relus) <= SINGLE_RELUS else [])
    for group in groups:
        for rule in MODES:  # the gradient rule kept under a modified one is unhooked_relu's case
            if rule != base and not (rule == "gradient" and base in ("deconvnet", "guided")):
                rules = {case.net.layers[i].name: rule for i in group}
                where = "ReLUs" if len(group) > 1 else "ReLU"
                yield (
                    "relu-rule",
                    f"the {rule} rule at the {where} {_span(case.net, group)}",
                    (case.map(rules=rules)),
                    None,
                )


def unhooked_relu(case):
    """Some ReLUs kept the gradient rule in a guided or DeconvNet map: hook-based implementations
    reach only ``nn.ReLU`` modules, so ``F.relu`` in ``forward`` and (before Captum's fix,
    github.com/pytorch/captum/pull/979) in-place ReLUs keep the gradient; tf-keras-vis changes
    only layers with an ``activation`` attribute, so a standalone Keras ``ReLU`` layer keeps it;
    hooks put on one submodule (``model.features``) leave the classifier's ReLUs alone."""
    if case.method not in ("deconvnet", "guided"):
        return
    relus = _relus(case.net)
    if not relus:
        return
    names = [case.net.layers[i].name for i in relus]
    groups = {}
    for name in names:  # ReLUs by the module or block that holds them (torch's "features.3": features)
        if "." in name or "_" in name:
            groups.setdefault(name.split(".")[0] if "." in name else name.split("_")[0], []).append(name)
    sets = []
    fused = [n for n in names if n.endswith("_relu")]  # minicnn's names of Keras activations
    if fused and len(fused) < len(names):  # tf-keras-vis's case first: the most specific
        sets.append(
            ([n for n in names if n not in fused], "the standalone ReLU layers (not a layer's activation)")
        )
    if len(groups) > 1 or sum(map(len, groups.values())) < len(names):
        for prefix, members in groups.items():
            sets.append((members, f"the ReLUs of {prefix}"))
            rest = [n for n in names if n not in members]
            sets.append((rest, f"every ReLU outside {prefix}"))
    if len(names) <= SINGLE_RELUS:
        sets += [([n], f"the ReLU {n}") for n in names]
    sets.append((names, "every ReLU"))
    for members, words in sets:
        yield (
            "unhooked-relu",
            f"{words} kept the gradient rule ({', '.join(members)})",
            (case.map(rules=dict.fromkeys(members, "gradient"))),
            None,
        )


def float32_ties(case):
    """The reference was computed in float64 (or by another summation order) and minicnn's float32
    pass broke max-pool or ReLU ties the other way: with random or untrained weights many ReLU
    inputs sit at 0 and pooling windows hold equal values, so a rounding difference moves the
    gradient to another pixel. The candidate is minicnn's map in float64; the detail counts the
    decisions float32 flipped."""
    import copy

    if np.dtype(case.net.dtype) == np.float64 or case.method not in RULE_OF:
        return
    wide = copy.deepcopy(case.net).astype(np.float64)
    x = wide.xp.asarray(case.x_host)
    m = method_map(wide, x, case.method, case.targets, layer=case.layer)
    if m.shape == case.reference.shape:
        relu, pool = flipped_decisions(case.net, case.x)
        detail = f"minicnn's map in float64 (float32 flipped {relu} ReLU signs and {pool} max-pool switches)"
        yield "float32-ties", detail, m, None


#: in this order; of two hypotheses that build the same map the first is reported (the more specific:
#: stale-state names why a guided map is the DeconvNet map, which method only states)
HYPOTHESES = (
    float32_ties,
    preprocessing,
    channel_order,
    target,
    softmax,
    stale_state,
    method,
    relu_rule,
    unhooked_relu,
)
