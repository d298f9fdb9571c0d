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

A ReLU row also predicts how many entries differ, from the incoming signal R and the rectifier's
recorded input X alone: the gradient keeps R where X > 0, the DeconvNet where R > 0, so they differ
exactly at (R < 0, X > 0) and (R > 0, X <= 0). The measured count (entries where the two rules'
outputs are not equal) stands beside the predicted one, split the same way.

The Simonyan table is the first section of the equivalence suite. The others (``SECTIONS``), one
file each, state an equality proved since, check its conditions on the network and measure it
between two independent codes (tools/equivalence_section.py): the engine's DeconvNet and guided
rules against the reverse network built apart (equivalence_modes.py), the max-pool switches against
an independent argmax (equivalence_switches.py), Grad-CAM against CAM on a GAP network
(equivalence_cam.py), and Sixt et al.'s class-insensitivity per layer (equivalence_convergence.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm.auto import tqdm

from minicnn.backend import get_xp, to_numpy
from minicnn.errors import MinicnnError
from minicnn.rules import MODES, layer_backward
from minicnn.tools.deconvnet import forward_input, reverse_layer
from minicnn.tools.equivalence_cam import cam_section
from minicnn.tools.equivalence_conditions import Setting
from minicnn.tools.equivalence_convergence import convergence_section
from minicnn.tools.equivalence_modes import deconvnet_section, guided_section
from minicnn.tools.equivalence_relevance import deeplift_section, ig_section, lrp0_section, zplus_section
from minicnn.tools.equivalence_section import Row, Section, cosine
from minicnn.tools.equivalence_switches import switches_section
from minicnn.tools.targets import as_batch, forward_record, resolve_targets


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
    predicted: int | None = None  # ReLU: entries at (R < 0, X > 0) plus (R > 0, X <= 0)
    measured: int | None = None  # ReLU: entries where the two rules' outputs are not equal
    split: dict | None = None  # ReLU: both counts by where they fall, (R < 0, X > 0) and (R > 0, X <= 0)


def relu_counts(signal, x, grad, dec) -> tuple[int, int, dict]:
    """(predicted, measured, split) for a rectifier: the entries where the gradient rule (keep R at
    X > 0) and the DeconvNet rule (keep R at R > 0) must differ, computed from the incoming signal R
    and the recorded input X alone; the entries where their outputs differ; both counts split by
    (R < 0, X > 0) and (R > 0, X <= 0)."""
    neg_pos = (signal < 0) & (x > 0)
    pos_nonpos = (signal > 0) & (x <= 0)
    differ = grad != dec
    split = {
        "predicted R<0,X>0": int(neg_pos.sum()),
        "predicted R>0,X<=0": int(pos_nonpos.sum()),
        "measured R<0": int((differ & (signal < 0)).sum()),
        "measured R>0": int((differ & (signal > 0)).sum()),
    }
    return int(neg_pos.sum() + pos_nonpos.sum()), int(differ.sum()), split


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
    signals: mode -> (N, C, H, W) NumPy input-space signal; targets: (N,) classes; sections: the
    suite's sections (equivalence_section.Section), the Simonyan table first."""

    rows: list[LayerRow]
    pairs: list[ModePair]
    signals: dict = field(repr=False)
    targets: np.ndarray
    tol: float
    sections: list = field(default_factory=list)

    def section(self, name: str):
        """The section called ``name``."""
        return next(s for s in self.sections if s.name == name)

    def records(self) -> dict:
        """Plain data for a figure or JSON: {"layers": [row dicts], "pairs": [pair dicts], "targets",
        "sections": [section dicts]}."""
        return {
            "layers": [asdict(r) for r in self.rows],
            "pairs": [asdict(p) for p in self.pairs],
            "targets": self.targets.tolist(),
            "sections": [s.records() for s in self.sections],
        }

    def failures(self) -> list[str]:
        """'section: row' for every row whose conditions hold and whose claim is not met."""
        return [f"{s.name}: {r.name}" for s in self.sections for r in s.rows if r.holds is False]

    def summary(self) -> str:
        """One line per section: its rows that hold (of those that claim an equality where the
        conditions hold), the largest gap among them, and each row whose condition fails with its
        measured gap (the finding); measurement sections say what they measured."""
        lines = [f"{'section':<13}{'holds':>8}{'largest gap':>13}  where a condition fails: the measured gap"]
        for s in self.sections:
            claims = [r for r in s.rows if r.holds is not None]
            held = [r for r in claims if r.holds]
            gaps = [r.gap for r in held if r.gap is not None and r.bound is not None]  # not ReLU counts
            largest = f"{max(gaps):.1e}" if gaps else "-"
            found = [f"{r.name} {r.gap:.2f} ({r.failed})" for r in s.rows if r.failed and r.gap is not None]
            found += [f"{r.name}: {r.failed}" for r in s.rows if r.failed and r.gap is None]
            if not s.rows:
                found = ["; ".join(c.name for c in s.conditions if not c.holds) + " (no row)"]
            elif not claims and not found:  # a measurement: its last row (the image) by name
                last = s.rows[-1]
                found = [f"{last.name}: " + ", ".join(f"{k} {v:.2f}" for k, v in last.numbers.items())]
            line = f"{s.name:<13}{f'{len(held)}/{len(claims)}':>8}{largest:>13}  {'; '.join(found)}"
            lines.append(line.rstrip())
        return "\n".join(lines)

    def table(self) -> str:
        """The measured version of Simonyan et al.'s table, then every other section, as text."""
        parts = [self.simonyan_table()] if self.rows else []
        parts += [s.text() for s in self.sections if s.name != "simonyan"]
        return "\n\n".join(parts)

    def simonyan_table(self) -> str:
        """The measured version of Simonyan et al.'s table, as text."""
        wide = max([20, *(len(r.name) + 2 for r in self.rows)])  # ResNet names: layer2.0.downsample.0
        # the rule columns widen too (BatchNorm2D's forward text is "a X + b, a = g / s")
        fwd = max([17, *(len(r.forward) + 2 for r in self.rows)])
        dec = max([15, *(len(r.deconvnet) + 2 for r in self.rows)])
        grad = max([15, *(len(r.gradient) + 2 for r in self.rows)])
        head = (
            f"{'layer':<{wide}}{'kind':<19}{'forward pass':<{fwd}}{'DeconvNet':<{dec}}{'gradient':<{grad}}"
            f"{'max rel diff':>13}{'differing':>11}{'predicted':>11}{'measured':>10}"
        )
        lines = [
            "DeconvNet vs gradient backward rule, layer by layer (Simonyan et al. 2013, sec. 4):",
            f"both rules applied to the same DeconvNet signal from class score(s) "
            f"{', '.join(map(str, self.targets.tolist()))}; differing = |diff| > {self.tol:g} * scale",
            "ReLU rows: predicted = entries at (R < 0, X > 0) + (R > 0, X <= 0), from R and the recorded X; "
            "measured = entries where the two rules' outputs differ",
            head,
            "-" * len(head),
        ]
        for r in self.rows:
            counts = f"{r.predicted:>11,}{r.measured:>10,}" if r.predicted is not None else ""
            lines.append(
                f"{r.name:<{wide}}{r.kind:<19}{r.forward:<{fwd}}{r.deconvnet:<{dec}}{r.gradient:<{grad}}"
                f"{r.rel_diff:>13.2e}{r.frac_differ:>10.1%}{counts}"
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


def simonyan_section(rows, bound: float) -> Section:
    """The Simonyan table as a section: a non-ReLU row holds when its gap is within ``bound``, a
    ReLU row when the measured count of differing entries is the predicted one."""
    out = []
    for r in rows:
        if r.predicted is None:
            out.append(Row(r.name, f"DeconvNet {r.deconvnet}", f"gradient {r.gradient}", r.rel_diff, bound))
        else:
            numbers = dict(r.split)
            out.append(
                Row(r.name, "DeconvNet R [R > 0]", "gradient dX [X > 0]", r.rel_diff, None,
                    expected=r.predicted, measured=r.measured, numbers=numbers)
            )  # fmt: skip
    return Section(
        "simonyan",
        "DeconvNet vs gradient, layer by layer (Simonyan et al. 2013, sec. 4)",
        "DeconvNet and gradient apply the same operation at every layer but the ReLU, where they "
        "differ exactly at (R < 0, X > 0) and (R > 0, X <= 0)",
        [],
        out,
        ["sides: the reverse stage (tools/deconvnet.py) vs the layer's gradient backward, on the "
         "same incoming DeconvNet signal"],
    )  # fmt: skip


#: the sections of the suite after the Simonyan table, by name (``--section``): each builder takes a
#: equivalence_conditions.Setting and returns a Section
SECTIONS = {
    "deconvnet": deconvnet_section,
    "guided": guided_section,
    "switches": switches_section,
    "cam": cam_section,
    "lrp0": lrp0_section,
    "deeplift": deeplift_section,
    "ig": ig_section,
    "zplus": zplus_section,
    "convergence": convergence_section,
}

#: every section name, in the order printed
SECTION_NAMES = ("simonyan", *SECTIONS)


def check_sections(sections) -> tuple[str, ...]:
    """The section names asked for (None: all) in the order printed; one MinicnnError naming the
    choices for an unknown name."""
    if sections is None:
        return SECTION_NAMES
    names = (sections,) if isinstance(sections, str) else tuple(sections)
    unknown = [n for n in names if n not in SECTION_NAMES]
    if unknown or not names:
        raise MinicnnError(
            f"unknown equivalence section {', '.join(map(repr, unknown)) or '(none)'}: expected one of "
            f"{', '.join(SECTION_NAMES)}"
        )
    return tuple(n for n in SECTION_NAMES if n in names)


def equivalence(
    net, x, target="predicted", tol: float | None = None, record=None, progress: bool = True, sections=None
) -> EquivalenceResult:
    """Measure, for every layer of ``net``, the DeconvNet rule against the gradient rule, and the
    other sections of the equivalence suite.

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
        sections: names from SECTION_NAMES (None: all); "simonyan" is the per-layer table below.

    Returns:
        an EquivalenceResult (rows from the output layer down to the first layer; empty when the
        "simonyan" section is not asked for). Conv, pooling, dense and reshape rows measure two codes
        for one operation (float rounding apart: ~1e-15 in float64, up to a few 1e-6 in float32 where
        a layer runs F(4x4, 3x3) Winograd); ReLU rows differ by what the paper says, on the entries
        predicted. ``sections`` holds every section asked for, each row with its verdict.
    """
    if tol is None:
        tol = DEFAULT_TOL.get(np.dtype(net.dtype), 1e-6)
    names = check_sections(sections)
    x = as_batch(net, x)
    rec = forward_record(net, x, record)
    scores = rec.output()
    targets = resolve_targets(target, scores)
    setting = Setting(net, rec, targets, progress)
    rows, pairs, signals, found = [], [], {}, []
    if "simonyan" in names:
        rows, pairs, signals = simonyan_rows(net, rec, setting.dy, tol, progress)
        found.append(simonyan_section(rows, setting.bound))
    found += [SECTIONS[name](setting) for name in names if name != "simonyan"]
    return EquivalenceResult(
        rows=rows,
        pairs=pairs,
        signals={m: to_numpy(s) for m, s in signals.items()},
        targets=targets,
        tol=tol,
        sections=found,
    )


def simonyan_rows(net, rec, dy, tol: float, progress: bool):
    """(LayerRows, the three whole-network ModePairs, mode -> input-space signal) of the table."""
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
        fwd, rule_dec, rule_grad = layer.equivalence_row  # (kind: the name in printed tables)
        row = LayerRow(layer.name, layer.kind, fwd, rule_dec, rule_grad, rel, frac)
        if layer.is_rectifier:
            row.predicted, row.measured, row.split = relu_counts(signal, forward_input(layer, rec), grad, dec)
        rows.append(row)
        # continue along the real DeconvNet pass; in a graph, the signals of a node's readers add
        # (a new array, never in place: Add's reverse may hand one array to two inputs)
        for source, part in zip(rec.inputs[layer.name], dec if layer.several_inputs else (dec,)):
            signals[source] = part if source not in signals else signals[source] + part
    signals = {mode: rec.backward(dy, mode=mode) for mode in MODES}  # the engine's three rules
    pairs = []
    for a, b in (("gradient", "deconvnet"), ("gradient", "guided"), ("deconvnet", "guided")):
        rel, frac = compare(signals[a], signals[b], tol)
        pairs.append(ModePair(a, b, rel, frac, cosine(signals[a], signals[b])))
    return rows, pairs, signals
