"""Penalties for optimisation in input space: differentiable terms R(x) added to the objective.

A penalty has a ``name``, a ``weight`` lambda and one method:

    penalty(x, ref) -> (value (N,), gradient like x)   the unweighted term R(x) per image

The shared ascent loop (minicnn/tools/ascent.py) subtracts ``weight * R(x)`` from the objective when
it maximises and adds it to the loss when it minimises. x is an (N, C, H, W) batch in the network's
input space; ``ref`` (C, H, W) is the image that counts as "zero" (the mean image, see
ascent.reference_image), so norms measure the distance to it and not to black.

The other family, operations applied to the image between steps (jitter, blur, clipping, decay),
is in minicnn/tools/modifiers.py. Terms from Simonyan et al. (2013, sec. 2: L2) and Mahendran &
Vedaldi (2015, sec. 3.2: alpha-norm, total variation).
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError


class Penalty:
    """Base class: a name, a weight lambda >= 0, and the term R(x) that subclasses define."""

    name = "penalty"

    def __init__(self, weight: float = 1.0):
        self.weight = float(weight)
        if not np.isfinite(self.weight) or self.weight < 0:
            raise MinicnnError(f"{self.name}: weight must be a finite number >= 0, got {weight}")

    def penalty(self, x, ref):
        """(value (N,), gradient like x) of the unweighted term R(x) for x (N, C, H, W)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight:g})"


def _sum_per_image(a):
    return a.reshape(a.shape[0], -1).sum(axis=1)


class L2Penalty(Penalty):
    """R(x) = ||x - ref||^2 per image; the lambda ||I||^2 of Simonyan et al. (2013, eq. 1)."""

    name = "l2"

    def penalty(self, x, ref):
        d = x - ref
        return _sum_per_image(d * d), 2 * d


class AlphaNorm(Penalty):
    """R(x) = sum |(x - ref) / scale|^alpha / (C H W): the alpha-norm of Mahendran & Vedaldi (2015,
    sec. 3.2, alpha = 6), normalised as in their sec. 3.3 so that R is about 1 when pixels reach
    ``scale`` (the typical pixel range B, in input units: 1 for "unit" inputs, 80 for "caffe").
    """

    name = "alpha_norm"

    def __init__(self, weight: float = 1.0, alpha: float = 6.0, scale: float = 1.0):
        super().__init__(weight)
        self.alpha, self.scale = float(alpha), float(scale)
        if self.alpha < 1 or self.scale <= 0:
            raise MinicnnError(f"alpha_norm: expected alpha >= 1 and scale > 0, got {alpha}, {scale}")

    def penalty(self, x, ref):
        xp = get_xp(x)
        count = x[0].size
        d = (x - ref) / self.scale
        a = xp.abs(d)
        value = _sum_per_image(a**self.alpha) / count
        grad = self.alpha * a ** (self.alpha - 1) * xp.sign(d) / (self.scale * count)
        return value, grad.astype(x.dtype, copy=False)

    def __repr__(self) -> str:
        return f"AlphaNorm(weight={self.weight:g}, alpha={self.alpha:g}, scale={self.scale:g})"


class TotalVariation(Penalty):
    """R(x) = sum_{c,i,j} ((x[i,j+1] - x[i,j])^2 + (x[i+1,j] - x[i,j])^2)^(beta/2) / (C H W V^beta).

    The V^beta total variation of Mahendran & Vedaldi (2015, sec. 3.2, beta = 2 by default), over
    the (H-1) x (W-1) pixels that have both neighbours, normalised as in their sec. 3.3 with
    V = scale / 6.5 (``scale`` = the typical pixel range B). For beta < 2 a tiny epsilon keeps the
    gradient finite where the image is flat.
    """

    name = "total_variation"

    def __init__(self, weight: float = 1.0, beta: float = 2.0, scale: float = 1.0):
        super().__init__(weight)
        self.beta, self.scale = float(beta), float(scale)
        if self.beta < 1 or self.scale <= 0:
            raise MinicnnError(f"total_variation: expected beta >= 1 and scale > 0, got {beta}, {scale}")

    def penalty(self, x, ref):
        xp = get_xp(x)
        v = self.scale / 6.5
        norm = x[0].size * v**self.beta
        dw = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
        dh = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
        d2 = dw * dw + dh * dh
        if self.beta == 2.0:
            value, coef = _sum_per_image(d2), xp.full_like(d2, 2.0)
        else:
            d2 = d2 + 1e-12
            value = _sum_per_image(d2 ** (self.beta / 2))
            coef = self.beta * d2 ** (self.beta / 2 - 1)
        grad = xp.zeros_like(x)
        # d/dx of d2 through dw = x[i, j+1] - x[i, j] and dh = x[i+1, j] - x[i, j]
        grad[:, :, :-1, 1:] += coef * dw
        grad[:, :, 1:, :-1] += coef * dh
        grad[:, :, :-1, :-1] -= coef * (dw + dh)
        return value / norm, (grad / norm).astype(x.dtype, copy=False)

    def __repr__(self) -> str:
        return f"TotalVariation(weight={self.weight:g}, beta={self.beta:g}, scale={self.scale:g})"
