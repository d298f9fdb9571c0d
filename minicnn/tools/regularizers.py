"""Regularisers and input modifiers for optimisation in input space, as small composable objects.

Every object has a ``name`` and a ``weight`` and takes part in the shared ascent loop
(minicnn/tools/ascent.py) through up to three hooks, each a no-op unless overridden:

    penalty(x, ref)         -> (value (N,), gradient like x): a differentiable term R(x), weighted
                               by ``weight`` and subtracted from the objective (added to a loss)
    transform(x, rng)       -> (x', undo): changes the image the network sees at this step only;
                               ``undo`` maps the gradient w.r.t. x' back to x (or is None)
    after(x, step, ref)     -> x: changes the image itself after each update

x is an (N, C, H, W) batch in the network's input space; ``ref`` is the image that counts as "zero"
(the mean image, see ascent.reference_image), so decay and norms pull towards it and not towards
black. The terms come from Simonyan et al. (2013, sec. 2: L2), Yosinski et al. (2015, sec. 3: L2
decay, Gaussian blur, pixel clipping), Mahendran & Vedaldi (2015, sec. 3.2: alpha-norm, total
variation) and Mordvintsev et al. (2015, "Inceptionism": jitter).
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError


class Regularizer:
    """Base class: a name, a weight and three hooks that do nothing."""

    name = "regularizer"

    def __init__(self, weight: float = 1.0):
        self.weight = float(weight)
        if not np.isfinite(self.weight) or self.weight < 0:
            raise MinicnnError(f"{self.name}: weight must be a finite number >= 0, got {weight}")

    def penalty(self, x, ref):
        """(value (N,), gradient like x) of the unweighted term, or None if this is no penalty."""
        return None

    def transform(self, x, rng):
        """(x seen by the network at this step, undo function for the gradient or None)."""
        return x, None

    def after(self, x, step: int, ref):
        """The image after this regulariser's change at the end of step ``step`` (0-based)."""
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight:g})"


def _sum_per_image(a):
    return a.reshape(a.shape[0], -1).sum(axis=1)


class L2Penalty(Regularizer):
    """R(x) = ||x - ref||^2 per image; the lambda ||I||^2 of Simonyan et al. (2013, eq. 1)."""

    name = "l2"

    def penalty(self, x, ref):
        d = x - ref
        return _sum_per_image(d * d), 2 * d


class AlphaNorm(Regularizer):
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


class TotalVariation(Regularizer):
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


class L2Decay(Regularizer):
    """After each step x <- ref + (1 - weight) (x - ref): Yosinski et al. (2015, sec. 3, theta_decay).

    Pulls the image towards the mean image by a constant fraction; weight in [0, 1).
    """

    name = "l2_decay"

    def __init__(self, weight: float = 0.01):
        super().__init__(weight)
        if self.weight >= 1:
            raise MinicnnError(f"l2_decay: weight must be in [0, 1), got {weight}")

    def after(self, x, step, ref):
        return ref + (1 - self.weight) * (x - ref)


class Jitter(Regularizer):
    """Shift the image by a random (dy, dx), |dy|, |dx| <= ``pixels``, before each forward pass.

    Mordvintsev et al. (2015): the optimum must survive small translations, which removes the
    high-frequency patterns that exploit one exact alignment. The shift is circular (np.roll) and the
    gradient is rolled back, so the image itself never moves. ``weight`` is unused (kept as 1).
    """

    name = "jitter"

    def __init__(self, pixels: int = 2):
        super().__init__(1.0)
        self.pixels = int(pixels)
        if self.pixels < 0:
            raise MinicnnError(f"jitter: pixels must be >= 0, got {pixels}")

    def transform(self, x, rng):
        dy, dx = (int(v) for v in rng.integers(-self.pixels, self.pixels + 1, size=2))
        if dy == 0 and dx == 0:
            return x, None
        xp = get_xp(x)
        return xp.roll(x, (dy, dx), axis=(2, 3)), lambda g: xp.roll(g, (-dy, -dx), axis=(2, 3))

    def __repr__(self) -> str:
        return f"Jitter(pixels={self.pixels})"


def gaussian_blur(x, sigma: float):
    """Blur each channel of x (N, C, H, W) with a Gaussian of std ``sigma`` pixels.

    Separable: one 1-D pass along H, one along W, kernel radius ceil(3 sigma), edges reflected.
    Written as a sum of shifted copies (the kernel has a handful of taps), so it runs on any xp.
    """
    xp = get_xp(x)
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    radius = min(radius, x.shape[2] - 1, x.shape[3] - 1)  # reflect padding needs a wide enough image
    taps = taps[len(taps) // 2 - radius : len(taps) // 2 + radius + 1]
    taps /= taps.sum()
    for axis in (2, 3):
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        p = xp.pad(x, pad, mode="reflect")
        n = x.shape[axis]
        out = xp.zeros_like(x)
        for i, t in enumerate(taps):
            out += x.dtype.type(t) * xp.take(p, xp.arange(i, i + n), axis=axis)
        x = out
    return x


class GaussianBlur(Regularizer):
    """Every ``every`` steps, blur the image with a Gaussian of std ``weight`` pixels.

    Yosinski et al. (2015, sec. 3, theta_b_width and theta_b_every): cheap removal of the
    high-frequency content that the gradient adds.
    """

    name = "gaussian_blur"

    def __init__(self, weight: float = 0.5, every: int = 4):
        super().__init__(weight)
        self.every = int(every)
        if self.every < 1 or self.weight <= 0:
            raise MinicnnError(f"gaussian_blur: expected sigma > 0 and every >= 1, got {weight}, {every}")

    def after(self, x, step, ref):
        if (step + 1) % self.every:
            return x
        return ref + gaussian_blur(x - ref, self.weight)

    def __repr__(self) -> str:
        return f"GaussianBlur(sigma={self.weight:g}, every={self.every})"


class Clip(Regularizer):
    """After each step, clip pixel values to [low, high] (in input space; e.g. 0..1 for "unit")."""

    name = "clip"

    def __init__(self, low: float = 0.0, high: float = 1.0):
        super().__init__(1.0)
        self.low, self.high = float(low), float(high)
        if not self.low < self.high:
            raise MinicnnError(f"clip: expected low < high, got {low}, {high}")

    def after(self, x, step, ref):
        xp = get_xp(x)
        return xp.clip(x, self.low, self.high)

    def __repr__(self) -> str:
        return f"Clip(low={self.low:g}, high={self.high:g})"


class NormClip(Regularizer):
    """After each step, reset to the mean image the pixels whose norm across channels (of x - ref)
    lies below the ``weight`` percentile of the image (Yosinski et al. 2015, sec. 3,
    theta_n_pct): only the strongest pixels survive.
    """

    name = "norm_clip"

    def __init__(self, weight: float = 20.0):
        super().__init__(weight)
        if self.weight > 100:
            raise MinicnnError(f"norm_clip: weight is a percentile in [0, 100], got {weight}")

    def after(self, x, step, ref):
        xp = get_xp(x)
        d = x - ref
        norms = xp.sqrt((d * d).sum(axis=1))  # (N, H, W)
        cut = xp.percentile(norms.reshape(len(x), -1), self.weight, axis=1)
        keep = (norms >= cut[:, None, None])[:, None]
        return ref + d * keep


def check_regularizers(regularizers) -> tuple:
    """A tuple of Regularizer objects; MinicnnError naming the first thing that is not one."""
    if regularizers is None:
        return ()
    if isinstance(regularizers, Regularizer):
        return (regularizers,)
    out = tuple(regularizers)
    for r in out:
        if not isinstance(r, Regularizer):
            raise MinicnnError(
                f"regularizers must be Regularizer objects (L2Decay, Jitter, ...), got {type(r).__name__}"
            )
    return out
