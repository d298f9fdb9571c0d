"""The maps the diagnosis compares a disagreeing reference with: minicnn's maps under a changed
question (another class, a softmax on top, another method, another input) or a changed backward
rule at chosen ReLUs.

Every function returns a host float64 array in minicnn's layout: (N, C, H, W) for gradient,
gradient_x_input, deconvnet and guided; (N, H, W) for saliency (max over C of |g|, Simonyan et al.
2013, sec. 3.1) and grad_cam (at its layer's h x w, Selvaraju et al. 2017, eq. 1-2). Occlusion is
not recomputed here: one forward pass per occluder position is too much for a search.

The top signal (N, K) says what is explained (``top_signal``): the class score S_t (one-hot), the
softmax probability p_t (dp_t/dS = p_t (e_t - p)) or its log (e_t - p).
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.io.preprocess import CAFFE_MEAN_BGR, TORCH_MEAN, TORCH_STD

#: the methods the search recomputes, and the backward rule each runs at the ReLUs
RULE_OF = {
    "gradient": "gradient",
    "saliency": "gradient",
    "gradient_x_input": "gradient",
    "deconvnet": "deconvnet",
    "guided": "guided",
    "grad_cam": "gradient",
}
#: what the top signal explains (see the module docstring)
OBJECTIVES = ("score", "softmax", "log_softmax")


def top_signal(scores, targets, objective: str = "score") -> np.ndarray:
    """dy (N, K) float64 at the scores (N, K) for the targets (N,) ints: the derivative of the
    explained quantity with respect to the scores."""
    s = np.asarray(to_numpy(scores), dtype=np.float64)
    n = len(s)
    onehot = np.zeros_like(s)
    onehot[np.arange(n), np.asarray(targets)] = 1
    if objective == "score":
        return onehot
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    if objective == "log_softmax":
        return onehot - p
    if objective == "softmax":
        return p[np.arange(n), np.asarray(targets)][:, None] * (onehot - p)
    raise MinicnnError(f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}")


def backward_with_rules(net, rec, dy, rule: str, rules: dict | None = None, stop: str | None = None):
    """rec.backward of dy with ``rule`` at every ReLU except those named in ``rules`` (name -> rule).

    A chain is walked one run of layers with the same rule at a time (``start``/``stop`` of
    PassRecord.backward); a graph takes one rule everywhere, so per-ReLU ``rules`` need a chain.
    """
    rules = rules or {}
    if not rules:
        return rec.backward(dy, mode=rule, stop=stop)
    net.require_chain("a backward rule changed at chosen ReLUs")
    names = [layer.name for layer in net.layers]
    low = 0 if stop is None else names.index(stop) + 1
    i = len(names) - 1
    while i >= low:
        mode = rules.get(names[i], rule)
        j = i
        while j - 1 >= low and rules.get(names[j - 1], rule) == mode:
            j -= 1
        dy = rec.backward(dy, mode=mode, start=names[i], stop=names[j - 1] if j > 0 else None)
        i = j - 1
    return dy


def method_map(net, x, method: str, targets, objective: str = "score", rules=None, layer=None, record=None):
    """minicnn's map of ``method`` (a key of RULE_OF) for images x (N, C, H, W), explaining
    ``objective`` of the targets, with the backward rule replaced at the ReLUs named in ``rules``.
    layer: Grad-CAM's layer name (already resolved). record: a forward record of x to reuse."""
    if method not in RULE_OF:
        raise MinicnnError(f"no recomputed map for method {method!r}")
    rec = record if record is not None else net.run(x)
    scores = rec.output()
    dy = net.xp.asarray(top_signal(scores, targets, objective).astype(net.dtype))
    if method == "grad_cam":
        grad = to_numpy(rec.backward(dy, mode="gradient", stop=layer)).astype(np.float64)
        feats = to_numpy(rec.output(layer)).astype(np.float64)
        alpha = grad.mean(axis=(2, 3))
        return np.maximum(np.einsum("nk,nkhw->nhw", alpha, feats), 0)
    g = to_numpy(backward_with_rules(net, rec, dy, RULE_OF[method], rules)).astype(np.float64)
    if method == "gradient_x_input":
        return g * to_numpy(x).astype(np.float64)
    if method == "saliency":
        return np.abs(g).max(axis=1)
    return g


def fit_shape(candidate, like):
    """``candidate`` brought to the shape of ``like`` as verify reduces a reference: a map with
    channels against one without -> max over C of |.|; None when they cannot be compared."""
    if candidate is None:
        return None
    if candidate.shape == like.shape:
        return candidate
    if candidate.ndim == 4 and like.ndim == 3 and candidate.shape[2:] == like.shape[1:]:
        return np.abs(candidate).max(axis=1)
    return None


def to_pixels(x, convention: str) -> np.ndarray:
    """Network input (N, 3, H, W) -> RGB pixels (N, 3, H, W) float64 in 0..255 (no clipping): the
    inverse of io/preprocess for ``convention`` ("caffe", "torch", "unit", "none")."""
    x = np.asarray(to_numpy(x), dtype=np.float64)
    if convention == "caffe":
        return (x + np.array(CAFFE_MEAN_BGR)[:, None, None])[:, ::-1]
    if convention == "torch":
        return (x * np.array(TORCH_STD)[:, None, None] + np.array(TORCH_MEAN)[:, None, None]) * 255.0
    return x * 255.0 if convention == "unit" else x


def from_pixels(pixels, convention: str) -> np.ndarray:
    """RGB pixels (N, 3, H, W) float64 0..255 -> network input under ``convention`` (float64)."""
    if convention == "caffe":
        return pixels[:, ::-1] - np.array(CAFFE_MEAN_BGR)[:, None, None]
    if convention == "torch":
        return (pixels / 255.0 - np.array(TORCH_MEAN)[:, None, None]) / np.array(TORCH_STD)[:, None, None]
    return pixels / 255.0 if convention == "unit" else pixels


def pixel_jacobian(convention: str, channels: int) -> np.ndarray:
    """(C,) d input / d pixel per channel for ``convention`` in the network's channel order (the
    chain-rule factor between a gradient taken at the network input and one taken at the pixels)."""
    if convention == "torch":
        return 1.0 / (255.0 * np.array(TORCH_STD))
    if convention == "unit":
        return np.full(channels, 1.0 / 255.0)
    return np.ones(channels)


def flipped_decisions(net, x) -> tuple[int, int]:
    """(ReLU inputs whose sign, max-pool windows whose switch) differ between a forward pass of x
    in the network's float type and one in float64: the ties that float32 rounding broke the other
    way. x: (N, C, H, W). A chain or a graph; layers are asked through the record (``switches``
    where a layer's cache keeps them)."""
    import copy

    wide = copy.deepcopy(net).astype(np.float64)
    narrow_rec = net.run(x)
    wide_rec = wide.run(wide.xp.asarray(to_numpy(x), dtype=np.float64))
    relu, pool = 0, 0
    for layer in net.layers:
        if layer.is_rectifier:
            z32 = np.asarray(to_numpy(narrow_rec.layer_input(net.index(layer.name))))
            z64 = np.asarray(to_numpy(wide_rec.layer_input(net.index(layer.name))))
            relu += int(((z32 > 0) != (z64 > 0)).sum())
        switches = getattr(narrow_rec.cache(layer.name), "switches", None)
        if switches is not None:
            wide_switches = wide_rec.cache(layer.name).switches
            pool += int((to_numpy(switches) != to_numpy(wide_switches)).sum())
    return relu, pool
