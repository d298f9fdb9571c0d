"""The equivalence of DeconvNet and gradient backpropagation, layer by layer, measured.

Simonyan et al. (2013, sec. 4) show that the DeconvNet reconstruction of Zeiler & Fergus (2013) is,
for every layer except the ReLU, the same operation as the gradient: convolution backward is the
convolution with the transposed filters, and unpooling through the switches is the gradient of max
pooling. At a ReLU the DeconvNet rectifies the backward signal itself, R_n = R_(n+1) [R_(n+1) > 0],
while the gradient masks it by the forward input, dX_n = dX_(n+1) [X_n > 0].

``equivalence`` measures this on a real network and input with two separate implementations: the
DeconvNet built as Zeiler & Fergus draw it (tools/deconvnet.py: unpooling at the switches,
rectification, a forward convolution with the flipped filters, W^T R, the transposed averaging)
runs down from the one-hot class score, and at every layer the gradient rule (the layer's own
``backward`` under the "gradient" rule, with the cache of the same forward pass: col2im or the
Winograd adjoint, the max-pool kernel's scatter) is applied to the same incoming DeconvNet signal.
So a conv, pool or dense row is a real measurement: break either code and its rows show it
(tests/tools/test_equivalence.py). It also compares the three whole-network signals (gradient,
DeconvNet, guided). Each row's rules, in words, are the layer's own ``equivalence_row``.

On a graph (residual blocks) the DeconvNet pass walks the nodes in reverse order as
tools/deconvnet.py does: an Add row compares the signals sent down its branches (the sum's
transpose copies the signal to each: DeconvNet and gradient agree exactly), and a node read by
several (a block's input) receives the sum of their signals before its own row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm.auto import tqdm

from minicnn.backend import get_xp, to_numpy
from minicnn.rules import MODES, layer_backward
from minicnn.tools.deconvnet import reverse_layer
from minicnn.tools.targets import as_batch, forward_record, one_hot, resolve_targets


@dataclass
class LayerRow:
    """One layer's comparison: the DeconvNet's reverse stage (tools/deconvnet.py) and the gradient
    rule (the layer's backward) applied to the same incoming DeconvNet signal.

    rel_diff: max |gradient - deconvnet| / max(|gradient|, |deconvnet|) (0 if both are 0).
    frac_differ: fraction of entries whose difference exceeds ``tol`` times that scale.
    """

    name: str
    kind: str
    forward: str
    deconvnet: str
    gradient: str
    rel_diff: float
    frac_differ: float


@dataclass
class ModePair:
    """Two whole-network input-space signals compared: relative max difference, differing
    fraction (as in LayerRow) and cosine similarity of the flattened batch."""

    a: str
    b: str
    rel_diff: float
    frac_differ: float
    cosine: float


@dataclass
class EquivalenceResult:
    """rows: one LayerRow per layer, input side last; pairs: the three whole-network pairs;
    signals: mode -> (N, C, H, W) NumPy input-space signal; targets: (N,) classes."""

    rows: list[LayerRow]
    pairs: list[ModePair]
    signals: dict = field(repr=False)
    targets: np.ndarray
    tol: float

    def records(self) -> dict:
        """Plain data for a figure or JSON: {"layers": [row dicts], "pairs": [pair dicts], "targets"}."""
        return {
            "layers": [asdict(r) for r in self.rows],
            "pairs": [asdict(p) for p in self.pairs],
            "targets": self.targets.tolist(),
        }

    def table(self) -> str:
        """The measured version of Simonyan et al.'s table, as text."""
        wide = max([20, *(len(r.name) + 2 for r in self.rows)])  # ResNet names: layer2.0.downsample.0
        # the rule columns widen too (BatchNorm2D's forward text is "a X + b, a = g / s")
        fwd = max([17, *(len(r.forward) + 2 for r in self.rows)])
        dec = max([15, *(len(r.deconvnet) + 2 for r in self.rows)])
        grad = max([15, *(len(r.gradient) + 2 for r in self.rows)])
        head = (
            f"{'layer':<{wide}}{'kind':<19}{'forward pass':<{fwd}}{'DeconvNet':<{dec}}{'gradient':<{grad}}"
            f"{'max rel diff':>13}{'differing':>11}"
        )
        lines = [
            "DeconvNet vs gradient backward rule, layer by layer (Simonyan et al. 2013, sec. 4):",
            f"both rules applied to the same DeconvNet signal from class score(s) "
            f"{', '.join(map(str, self.targets.tolist()))}; differing = |diff| > {self.tol:g} * scale",
            head,
            "-" * len(head),
        ]
        for r in self.rows:
            lines.append(
                f"{r.name:<{wide}}{r.kind:<19}{r.forward:<{fwd}}{r.deconvnet:<{dec}}{r.gradient:<{grad}}"
                f"{r.rel_diff:>13.2e}{r.frac_differ:>10.1%}"
            )
        lines += ["", "whole network, input-space signals:"]
        lines.append(f"{'modes':<24}{'max rel diff':>13}{'differing':>11}{'cosine':>9}")
        for p in self.pairs:
            lines.append(
                f"{p.a + ' vs ' + p.b:<24}{p.rel_diff:>13.2e}{p.frac_differ:>10.1%} {p.cosine:>8.4f}"
            )
        return "\n".join(lines)


def compare(a, b, tol: float):
    """(relative max difference, fraction of entries differing by more than tol * scale) of two
    same-shaped arrays; scale = max(|a|, |b|)."""
    xp = get_xp(a)
    diff = xp.abs(a - b)
    scale = float(max(xp.abs(a).max(), xp.abs(b).max()))
    if scale == 0:
        return 0.0, 0.0
    return float(diff.max()) / scale, float((diff > tol * scale).mean())


# Entries count as differing above this fraction of the layer's scale, by the network's dtype. In
# float32 the two codes round differently by up to the engine's per-layer accuracy (F(4x4, 3x3)
# Winograd: 2-6e-6 of the largest value on VGG16's layers, tests/engine/test_winograd_f4.py), so
# 1e-6 would count rounding as difference; 1e-5 is the accuracy the engine promises per layer.
DEFAULT_TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-6}


def equivalence(
    net, x, target="predicted", tol: float | None = None, record=None, progress: bool = True
) -> EquivalenceResult:
    """Measure, for every layer of ``net``, the DeconvNet rule against the gradient rule.

    Args:
        net: a Sequential or a Graph (the rows follow the graph's nodes, the output first; an Add's
            row compares the signals sent down its branches).
        x: images (N, C, H, W) in network-input space, or one (C, H, W) image.
        target: class index, list of N indices, or "predicted": the DeconvNet pass starts from the
            one-hot target score (the class-specific reconstruction of Simonyan et al. sec. 4).
        tol: entries count as differing when |gradient - deconvnet| > tol * the layer's scale;
            None: DEFAULT_TOL for the network's dtype (1e-5 in float32, 1e-6 in float64).
        record: the PassRecord of a full forward pass over x already run by the caller (reused).
        progress: a tqdm bar of the layers on stderr (VGG16 on a few photos takes tens of seconds).

    Returns:
        an EquivalenceResult (rows from the output layer down to the first layer). Conv, pooling,
        dense and reshape rows measure two codes for one operation (float rounding apart: ~1e-15
        in float64, up to a few 1e-6 in float32 where a layer runs F(4x4, 3x3) Winograd); ReLU
        rows differ by what the paper says.
    """
    if tol is None:
        tol = DEFAULT_TOL.get(np.dtype(net.dtype), 1e-6)
    x = as_batch(net, x)
    rec = forward_record(net, x, record)
    scores = rec.output()
    targets = resolve_targets(target, scores)
    dy = one_hot(targets, scores)
    rows = []
    signals = {net.layers[-1].name: dy}  # the DeconvNet signal at each output, summed over its readers
    for layer in tqdm(
        list(reversed(net.layers)), desc="equivalence", unit="layer", leave=False, disable=not progress
    ):
        if layer.name not in signals:  # a graph node the class score does not depend on
            continue
        signal = signals.pop(layer.name)
        dec = reverse_layer(layer, signal, rec)  # Zeiler & Fergus's reverse stage
        grad, _ = layer_backward(layer, signal, rec.cache(layer.name), "gradient")
        if layer.several_inputs:  # (Add) one signal per input, all of one shape: compared together
            xp = get_xp(signal)
            rel, frac = compare(xp.stack(grad), xp.stack(dec), tol)
        else:
            rel, frac = compare(grad, dec, tol)
            dec = (dec,)
        fwd, rule_dec, rule_grad = layer.equivalence_row  # (kind: the name in printed tables)
        rows.append(LayerRow(layer.name, layer.kind, fwd, rule_dec, rule_grad, rel, frac))
        # continue along the real DeconvNet pass; in a graph, the signals of a node's readers add
        # (a new array, never in place: Add's reverse may hand one array to two inputs)
        for source, part in zip(rec.inputs[layer.name], dec):
            signals[source] = part if source not in signals else signals[source] + part
    signals = {mode: rec.backward(dy, mode=mode) for mode in MODES}  # the engine's three rules
    pairs = []
    for a, b in (("gradient", "deconvnet"), ("gradient", "guided"), ("deconvnet", "guided")):
        rel, frac = compare(signals[a], signals[b], tol)
        va, vb = signals[a].ravel().astype(np.float64), signals[b].ravel().astype(np.float64)
        xp = get_xp(va)
        norm = float(xp.linalg.norm(va) * xp.linalg.norm(vb))
        cosine = float(va @ vb) / norm if norm > 0 else 0.0
        pairs.append(ModePair(a, b, rel, frac, cosine))
    return EquivalenceResult(
        rows=rows,
        pairs=pairs,
        signals={m: to_numpy(s) for m, s in signals.items()},
        targets=targets,
        tol=tol,
    )
