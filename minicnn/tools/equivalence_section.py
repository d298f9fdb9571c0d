"""A section of the equivalence suite: one proved equality, its conditions checked, its rows measured.

Every section of ``mc.equivalence`` (tools/equivalence.py) states a theorem from the literature
(e.g. "guided backpropagation is the DeconvNet rectification composed with the forward mask",
Springenberg et al. 2015), the conditions under which it holds (ReLU and max-pool nonlinearities,
no biases, a zero baseline), checks those conditions on the given network and input, and measures
each row as the gap between two INDEPENDENT codes, one per side of the equality:

    gap = max |A - B| / max(|A|, |B|)        (0 when both are 0)

A row holds when its conditions hold and its gap is at most the bound of its dtype (1e-12 in float64,
where both sides are exact arithmetic; in float32 the engine's per-layer accuracy). Where a condition
fails the row names it and shows the measured gap: on such a network the gap is the finding, not a
failure. A row with no bound is a measurement the theory predicts no value for (a cosine, a count).

Adding a row to the suite is a builder that returns a ``Section`` and a line in ``SECTIONS``
(tools/equivalence.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from minicnn.backend import get_xp

#: An equality holds when its gap is at most this, by dtype: float64 is exact arithmetic up to
#: rounding (a few 1e-16 per operation, far below 1e-12 on VGG16); in float32 two codes round
#: differently by up to the engine's per-layer accuracy (1e-5: F(4x4, 3x3) Winograd).
BOUND = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}


def bound_for(dtype) -> float:
    """The gap under which an equality holds for arrays of ``dtype``."""
    return BOUND.get(np.dtype(dtype), 1e-5)


def gap(a, b) -> float:
    """max |a - b| / max(|a|, |b|) of two same-shaped arrays (any device); 0 when both are 0.

    Tuples of arrays (one signal per input of an Add) are compared together."""
    if isinstance(a, tuple):
        xp = get_xp(a[0])
        a, b = xp.stack(a), xp.stack(b)
    xp = get_xp(a)
    if a.shape != b.shape:
        raise ValueError(f"the two sides have shapes {a.shape} and {b.shape}")
    scale = float(max(xp.abs(a).max(), xp.abs(b).max())) if a.size else 0.0
    return float(xp.abs(a - b).max()) / scale if scale > 0 else 0.0


def cosine(a, b) -> float:
    """Cosine similarity of two arrays, flattened, in float64; 0 when either is all zeros."""
    xp = get_xp(a)
    va, vb = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    norm = float(xp.linalg.norm(va) * xp.linalg.norm(vb))
    return float(va @ vb) / norm if norm > 0 else 0.0


@dataclass
class Condition:
    """One condition of a theorem, checked on the network: ``holds`` and what was found
    (``detail``, e.g. "13 of 16 layers map 0 to a nonzero output (biases)")."""

    name: str
    holds: bool
    detail: str = ""


@dataclass
class Row:
    """One measured comparison.

    name: what is compared (a layer, "whole network", a model copy); left, right: the two sides, in
    words naming their code; gap: the measured relative max difference (None: no two maps
    compared); bound: the equality holds when gap <= bound (None: a measurement, no equality
    claimed); failed: the condition that fails for this row ("" when all hold); expected /
    measured: for rows whose claim is not a zero gap (a ReLU's count of differing entries), the
    predicted and the measured value; numbers: further measured values by name (JSON, figures).
    """

    name: str
    left: str
    right: str
    gap: float | None
    bound: float | None
    failed: str = ""
    expected: float | None = None
    measured: float | None = None
    numbers: dict = field(default_factory=dict)

    @property
    def holds(self) -> bool | None:
        """True when the claim is met, False when its conditions hold and it is not met, None when
        a condition fails or the row claims nothing."""
        if self.failed or (self.bound is None and self.expected is None):
            return None
        within = self.bound is None or (self.gap is not None and self.gap <= self.bound)
        if self.expected is not None:
            return self.measured == self.expected and within
        return within

    @property
    def verdict(self) -> str:
        if self.failed:
            return f"gap expected: {self.failed}"
        if self.holds is None:
            return "measured"
        return "holds" if self.holds else "FAILS"


@dataclass
class Section:
    """One equality: ``name`` (for --section), ``title``, ``theorem`` (the claim and its paper),
    ``conditions`` checked on this network, ``rows`` measured, ``notes`` (what the sides are)."""

    name: str
    title: str
    theorem: str
    conditions: list[Condition]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    @property
    def failed_conditions(self) -> str:
        """The conditions that fail, joined ("" when all hold)."""
        return "; ".join(
            f"{c.name} ({c.detail})" if c.detail else c.name for c in self.conditions if not c.holds
        )

    def records(self) -> dict:
        """Plain data: name, title, theorem, conditions, notes and rows (with holds and verdict)."""
        rows = [{**asdict(r), "holds": r.holds, "verdict": r.verdict} for r in self.rows]
        return {
            "name": self.name,
            "title": self.title,
            "theorem": self.theorem,
            "conditions": [asdict(c) for c in self.conditions],
            "notes": list(self.notes),
            "rows": rows,
        }

    def text(self) -> str:
        """The section as text: title, theorem, conditions, notes, then one line per row (the
        rows' ``numbers`` as further columns)."""
        lines = [f"[{self.name}] {self.title}", f"  theorem: {self.theorem}"]
        for c in self.conditions:
            state = "holds" if c.holds else "FAILS"
            lines.append(f"  condition: {c.name}: {state}" + (f" ({c.detail})" if c.detail else ""))
        lines += [f"  {note}" for note in self.notes]
        if not self.rows:
            return "\n".join(lines)
        keys = list(dict.fromkeys(k for r in self.rows for k in r.numbers))
        wide = max([12, *(len(r.name) + 2 for r in self.rows)])
        sides = max([20, *(len(f"{r.left} vs {r.right}") + 2 for r in self.rows)])
        cols = [max(10, len(k) + 2) for k in keys]
        head = (
            f"  {'row':<{wide}}{'compared':<{sides}}{'gap':>10}{'bound':>8}{'expected':>10}{'measured':>10}"
        )
        head += "".join(f"{k:>{c}}" for k, c in zip(keys, cols)) + "  verdict"
        lines += [head, "  " + "-" * (len(head) - 2)]
        for r in self.rows:
            cells = [_number(r.numbers.get(k)) for k in keys]
            lines.append(
                f"  {r.name:<{wide}}{r.left + ' vs ' + r.right:<{sides}}"
                f"{_gap(r.gap):>10}{_gap(r.bound, 0):>8}{_number(r.expected):>10}{_number(r.measured):>10}"
                + "".join(f"{cell:>{c}}" for cell, c in zip(cells, cols))
                + f"  {r.verdict}"
            )
        return "\n".join(lines)


def _gap(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}e}"


def _number(value) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{int(value):d}"
    return f"{value:.4f}"
