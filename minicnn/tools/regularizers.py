"""Regularisers of optimisation in input space: penalties and input modifiers, checked and sorted.

The tools (class_model, maximize, invert) take one ``regularizers=`` sequence that may mix the two
families; the ascent loop treats them apart:

    penalties (minicnn/tools/penalties.py)       L2Penalty, AlphaNorm, TotalVariation: a term R(x)
                                                 with a ``weight``, added to the objective
    input modifiers (minicnn/tools/modifiers.py) Jitter(pixels), GaussianBlur(sigma, every),
                                                 Clip(low, high), NormClip(percentile),
                                                 L2Decay(fraction): operations on the image

(the split of tf-keras-vis: ``regularizers`` and ``input_modifiers``). Every class is importable from
here too, as before the split. ``Regularizer``, the old base class with all three hooks and a
``weight`` that meant a weight, a blur sigma or a percentile, still works and is deprecated.
"""

from __future__ import annotations

import warnings

from minicnn.errors import MinicnnError
from minicnn.tools.modifiers import (
    Clip,
    GaussianBlur,
    InputModifier,
    Jitter,
    L2Decay,
    NormClip,
    gaussian_blur,
)
from minicnn.tools.penalties import AlphaNorm, L2Penalty, Penalty, TotalVariation

__all__ = [
    "AlphaNorm",
    "Clip",
    "GaussianBlur",
    "InputModifier",
    "Jitter",
    "L2Decay",
    "L2Penalty",
    "NormClip",
    "Penalty",
    "Regularizer",
    "TotalVariation",
    "check_regularizers",
    "gaussian_blur",
    "split_regularizers",
]


class Regularizer(Penalty, InputModifier):
    """Deprecated base class with all three hooks (penalty, transform, after); subclass Penalty or
    InputModifier instead. Subclasses written against it keep working in the ascent loop."""

    name = "regularizer"
    weight = 1.0  # a plain attribute here, shadowing InputModifier's deprecated property

    def __init__(self, weight: float = 1.0):
        warnings.warn(
            "Regularizer is deprecated: subclass minicnn.tools.penalties.Penalty (a weighted term) or "
            "minicnn.tools.modifiers.InputModifier (an operation on the image)",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(weight)

    def penalty(self, x, ref):
        """None: no term unless a subclass overrides it."""
        return None


def check_regularizers(regularizers) -> tuple:
    """A tuple of Penalty and InputModifier objects, in the given order (None -> ()); MinicnnError
    naming the first thing that is neither."""
    if regularizers is None:
        return ()
    if isinstance(regularizers, (Penalty, InputModifier)):
        return (regularizers,)
    out = tuple(regularizers)
    for r in out:
        if not isinstance(r, (Penalty, InputModifier)):
            raise MinicnnError(
                "Regularizer objects are penalties (L2Penalty, AlphaNorm, TotalVariation) or input "
                f"modifiers (Jitter, GaussianBlur, Clip, NormClip, L2Decay), got {type(r).__name__}"
            )
    return out


def split_regularizers(regularizers) -> tuple[tuple, tuple]:
    """(penalties, input modifiers), each in the given order, from check_regularizers' tuple.

    A subclass of the deprecated Regularizer is a modifier, and a penalty too if it overrides
    ``penalty``.
    """
    regs = check_regularizers(regularizers)
    penalties = tuple(
        r
        for r in regs
        if isinstance(r, Penalty)
        and not (isinstance(r, Regularizer) and type(r).penalty is Regularizer.penalty)
    )
    modifiers = tuple(r for r in regs if isinstance(r, InputModifier))
    return penalties, modifiers
