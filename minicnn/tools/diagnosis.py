"""Why another framework's map differs from minicnn's: named hypotheses, tested.

When ``verify`` finds that a reference map disagrees, ``diagnose`` tries every hypothesis of
``tools/diagnosis_arrays`` (the map handled differently afterwards) and ``tools/diagnosis_model``
(another question asked: input, class, objective, method, backward rule), each a small function
that builds the map the reference would be if the hypothesis were true. A hypothesis explains the
difference when its map leaves a residual max |candidate - reference| / max |reference| within
the comparison's tolerance; the explanations are reported best (smallest residual) first.

The causes, a fixed vocabulary (``CAUSES``, the ``cause`` of ``--json``'s ``diagnosis``):

    sign            the map is the negative of minicnn's
    abs             the absolute value: of minicnn's map, or a signed map given for saliency
    scale           times a factor, or normalised per image
    channel-order   colour channels reversed, in the map or in the input (RGB <-> BGR)
    layout          axes transposed or reshaped (NCHW / NHWC, height <-> width)
    preprocessing   the input preprocessed by another convention, or the gradient at the pixels
    target          another class
    softmax         the softmax probability (or its log) instead of the class score
    method          another of minicnn's methods
    relu-rule       another backward rule at one ReLU or a run of consecutive ReLUs
    unhooked-relu   some ReLUs kept the gradient rule (hooks that missed them)
    batch           another image's map, or only the first image of the batch explained
    stale-state     the map of the method run before on the same input
    float32-ties    float32 rounding flipped max-pool or ReLU ties (the float64 maps agree)

A correct map is never diagnosed: ``verify`` asks only when the maps disagree (or when a signed
map is given for saliency, which is wrong whatever it compares to).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minicnn.backend import to_numpy
from minicnn.tools import diagnosis_arrays, diagnosis_model
from minicnn.tools.diagnosis_maps import fit_shape, method_map

CAUSES = (
    "sign",
    "abs",
    "scale",
    "channel-order",
    "layout",
    "preprocessing",
    "target",
    "softmax",
    "method",
    "relu-rule",
    "unhooked-relu",
    "batch",
    "stale-state",
    "float32-ties",
)
HYPOTHESES = diagnosis_arrays.HYPOTHESES + diagnosis_model.HYPOTHESES


@dataclass(frozen=True)
class Explanation:
    """One hypothesis that explains the difference: its cause (one of CAUSES), what it says, and
    the residual max |candidate - reference| / max |reference| it leaves."""

    cause: str
    detail: str
    residual: float
    same_as: str | None = None  # the detail of a better-ranked explanation whose map is the same

    def line(self) -> str:
        return f"explained: {self.cause}: {self.detail} (residual {self.residual:.2g})"

    def as_dict(self) -> dict:
        return {"cause": self.cause, "detail": self.detail, "residual": self.residual}


class Case:
    """What the hypotheses read: the network, the input, the method and targets, minicnn's map
    ``ours`` and the ``reference``, both float64 in minicnn's layout (the reference as verify
    arranged and reduced it), and ``map(...)``, minicnn's map under a changed question.

    x: (N, C, H, W) of the network's dtype. targets: (N,) ints. layer: Grad-CAM's layer (resolved;
    None when the network has none, and then no Grad-CAM map is tried).
    signed_reference: a saliency reference that had negative entries (see ``verify.reduce_channels``).
    methods: the methods the ``method`` hypothesis may name.
    """

    def __init__(self, net, x, method, targets, ours, reference, tol, layer=None, signed_reference=False,
                 methods=()):  # fmt: skip
        self.net, self.x, self.method, self.tol, self.layer = net, x, method, float(tol), layer
        self.targets = np.asarray(targets, dtype=np.int64)
        self.ours, self.reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
        self.scale = float(np.abs(self.reference).max())
        self.signed_reference, self.methods = signed_reference, tuple(methods)
        self.x_host = np.asarray(to_numpy(x), dtype=np.float64)
        self.record = net.run(x)
        self.scores = np.asarray(to_numpy(self.record.output()), dtype=np.float64)

    def as_input(self, x64):
        """A float64 host array (N, C, H, W) as network input (the network's dtype and device)."""
        return self.net.xp.asarray(np.ascontiguousarray(x64, dtype=self.net.dtype))

    def map(self, method=None, targets=None, objective="score", rules=None, x=None):
        """minicnn's map (float64, the reference's shape, or None where it cannot have it) of
        ``method`` (default: the case's) for ``targets``, ``objective``, per-ReLU ``rules``, input x."""
        method = method or self.method
        if method == "grad_cam" and self.layer is None:
            return None  # no layer with (C, h, w) feature maps: see verify.explain
        record = self.record if x is None else None
        m = method_map(
            self.net, self.x if x is None else x, method,
            self.targets if targets is None else targets, objective, rules, self.layer, record,
        )  # fmt: skip
        return fit_shape(m, self.reference)

    def registry_map(self, name: str):
        """The map of the registry's method ``name`` (tools/methods.py) for the case's targets,
        float64 in the reference's shape; None where this network or copy of minicnn has none."""
        from minicnn.errors import MinicnnError
        from minicnn.tools import methods

        try:
            m = methods.compute(name, self.net, self.x, self.targets, record=self.record)
        except MinicnnError:
            return None
        return fit_shape(np.asarray(to_numpy(m), dtype=np.float64), self.reference)


def residual(candidate, reference) -> float:
    """max |candidate - reference| / max |reference|; inf when the shapes differ."""
    if candidate is None or candidate.shape != reference.shape:
        return float("inf")
    scale = float(np.abs(reference).max())
    return float(np.abs(candidate - reference).max() / scale) if scale > 0 else float("inf")


def diagnose(case, hypotheses=HYPOTHESES) -> tuple[list[Explanation], Explanation | None]:
    """(the explanations within the case's tolerance, best first; the closest hypothesis that does
    not explain it, or None). Each hypothesis yields (cause, detail, candidate, reference view)."""
    found, seen, maps = [], set(), []
    for hypothesis in hypotheses:
        for cause, detail, candidate, view in hypothesis(case):
            if (cause, detail) in seen:
                continue
            seen.add((cause, detail))
            found.append(
                Explanation(cause, detail, residual(candidate, case.reference if view is None else view))
            )
            maps.append(candidate if found[-1].residual <= case.tol else None)
    order = sorted(range(len(found)), key=lambda i: (found[i].residual, i))  # ties keep the hypotheses' order
    explained, firsts = [], []  # firsts: (map, detail) of each distinct explaining map, best first
    for i in order:
        if found[i].residual > case.tol:
            break
        same = next((detail for m, detail in firsts if np.array_equal(m, maps[i])), None)
        if same is None:
            firsts.append((maps[i], found[i].detail))
        explained.append(Explanation(found[i].cause, found[i].detail, found[i].residual, same))
    ranked = [found[i] for i in order]
    closest = None if explained or not ranked or not np.isfinite(ranked[0].residual) else ranked[0]
    return explained, closest
