"""Completeness, method by method: do a map's attributions add up to what its paper says they do?

Each method of the registry (``tools/methods.py``) states its claim in ``Method.completeness``:

- "F(x) - F(baseline)": integrated gradients (Sundararajan et al. 2017, sec. 3, "completeness"; up to
  the quadrature's error) and DeepLIFT (Shrikumar et al. 2017, sec. 3.1, "summation-to-delta");
  the gap is ``integrated_gradients.completeness_gap`` with the method's own baseline;
- "F(x)": LRP (Bach et al. 2015, sec. 3, relevance conservation): exact only where the biases are
  zero (a bias absorbs relevance) and epsilon -> 0;
- "1" / "0": excitation backprop's winning probabilities (Zhang et al. 2016) sum to 1, the
  contrastive map to 0.

F is the target's score before softmax. A method without a claim (the gradient, gradient x input,
...) is not measured: gradient x input is complete only on a bias-free ReLU/max-pool network with
the zero baseline (Euler's theorem on a positively homogeneous function), which
``tests/tools/test_faithfulness.py`` shows, with Quantus 0.6's ``Completeness`` (an exact equality
test) agreeing on networks where every number is an exact integer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.tools.targets import as_batch, forward_record, resolve_targets


@dataclass
class CompletenessRow:
    """One method's completeness: claim (the registry's text), claimed (N,) what the map should sum
    to, total (N,) what it sums to, gap (N,) = total - claimed, relative (N,) = |gap| /
    max(|claimed|, 1e-12); all float64 on the host."""

    method: str
    claim: str
    claimed: np.ndarray
    total: np.ndarray
    gap: np.ndarray
    relative: np.ndarray


def claiming_methods(net) -> list[str]:
    """The registry's methods that claim completeness and that ``net`` allows, in table order."""
    from minicnn.tools.methods import METHODS, available

    return [name for name in available(net) if METHODS[name].complete and METHODS[name].target]


def completeness(net, x, methods=None, target="predicted", record=None, **options) -> list[CompletenessRow]:
    """Each method's completeness gap on images x (N, C, H, W) or (C, H, W).

    methods: registry names (default: every method claiming completeness that ``net`` allows); a
    method without a claim is refused in one line. options: {method name: {option: value}} passed
    to the method (e.g. {"integrated-gradients": {"steps": 200}}). Returns one row per method.
    """
    from minicnn.tools.integrated_gradients import completeness_gap
    from minicnn.tools.methods import get

    x = as_batch(net, x)
    rec = forward_record(net, x, record)
    scores = to_numpy(rec.output()).astype(np.float64)
    targets = resolve_targets(target, scores)
    rows = []
    for name in claiming_methods(net) if methods is None else methods:
        method = get(name)
        if not method.complete:
            raise MinicnnError(f"{method.name} claims no completeness; methods that do: "
                               f"{', '.join(claiming_methods(net))}")  # fmt: skip
        settings = method.settings(options.get(method.name))
        try:
            a = to_numpy(method(net, x, targets, record=rec, **settings)).astype(np.float64)
        except ImportError:
            # a registry entry whose tool this copy of minicnn lacks: left out of the default list,
            # refused in one line when asked for by name
            if methods is None:
                continue
            raise MinicnnError(f"{method.name} is not available in this copy of minicnn") from None
        total = a.reshape(len(a), -1).sum(axis=1)
        if method.completeness == "F(x) - F(baseline)":
            gap = completeness_gap(net, x, a, targets, baseline=settings.get("baseline", 0.0))
            claimed = total - gap
        elif method.completeness == "F(x)":
            claimed = scores[np.arange(len(targets)), targets]
            gap = total - claimed
        else:  # a constant: "1", "0"
            claimed = np.full(len(targets), float(method.completeness))
            gap = total - claimed
        relative = np.abs(gap) / np.maximum(np.abs(claimed), 1e-12)
        rows.append(CompletenessRow(method.name, method.completeness, claimed, total, gap, relative))
    return rows
