"""Input modifiers for optimisation in input space: operations on the image between steps.

Unlike a penalty (minicnn/tools/penalties.py) a modifier adds no term to the objective and has no
weight; each parameter is named for what it is (``pixels``, ``sigma``, ``percentile``, ...). The
shared ascent loop (minicnn/tools/ascent.py) calls two hooks, each a no-op unless overridden:

    transform(x, rng)    -> (x', undo): the image the network sees at this step only; ``undo`` maps
                            the gradient w.r.t. x' back to x (or is None)
    after(x, step, ref)  -> x: the image itself, changed after each update

x is an (N, C, H, W) batch in the network's input space; ``ref`` (C, H, W) is the image that counts
as "zero" (the mean image, see ascent.reference_image), so decay and clipping by norm act on x - ref.
From Yosinski et al. (2015, sec. 3: L2 decay, Gaussian blur, pixel clipping) and Mordvintsev et al.
(2015, "Inceptionism": jitter).
"""

from __future__ import annotations

import warnings

import numpy as np

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError


def _renamed_weight(owner: str, new: str, value):
    """The value of the deprecated ``weight=`` keyword, with a DeprecationWarning naming ``new``."""
    warnings.warn(
        f"{owner}(weight=...) is deprecated: the parameter is {new}= ({owner} is an input modifier, "
        "not a weighted penalty)",
        DeprecationWarning,
        stacklevel=3,
    )
    return value


class InputModifier:
    """Base class: a name and two hooks that do nothing."""

    name = "modifier"
    # the attribute that the deprecated ``weight`` used to mean (None: it meant nothing, always 1)
    _old_weight = None

    def transform(self, x, rng):
        """(x seen by the network at this step, undo function for the gradient or None)."""
        return x, None

    def after(self, x, step: int, ref):
        """The image after this modifier's change at the end of step ``step`` (0-based)."""
        return x

    @property
    def weight(self) -> float:
        """Deprecated: modifiers have no weight; this reads the parameter the old name meant."""
        warnings.warn(
            f"{type(self).__name__}.weight is deprecated: "
            + (f"use .{self._old_weight}" if self._old_weight else "an input modifier has no weight"),
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(self, self._old_weight) if self._old_weight else 1.0


class L2Decay(InputModifier):
    """After each step x <- ref + (1 - fraction) (x - ref): Yosinski et al. (2015, sec. 3, theta_decay).

    Pulls the image towards the mean image by a constant ``fraction`` in [0, 1) per step (what a
    gradient step on an L2 penalty does, applied directly to the image).
    """

    name = "l2_decay"
    _old_weight = "fraction"

    def __init__(self, fraction: float = 0.01, *, weight=None):
        if weight is not None:
            fraction = _renamed_weight("L2Decay", "fraction", weight)
        self.fraction = float(fraction)
        if not 0 <= self.fraction < 1:  # also refuses NaN
            raise MinicnnError(f"l2_decay: fraction must be in [0, 1), got {fraction}")

    def after(self, x, step, ref):
        return ref + (1 - self.fraction) * (x - ref)

    def __repr__(self) -> str:
        return f"L2Decay(fraction={self.fraction:g})"


class Jitter(InputModifier):
    """Shift the image by a random (dy, dx), |dy|, |dx| <= ``pixels``, before each forward pass.

    Mordvintsev et al. (2015): the optimum must survive small translations, which removes the
    high-frequency patterns that exploit one exact alignment. The shift is circular (np.roll) and the
    gradient is rolled back, so the image itself never moves.
    """

    name = "jitter"

    def __init__(self, pixels: int = 2):
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

    Separable: one 1-D pass along H, one along W, kernel radius ceil(3 sigma), edges reflected
    without repeating the edge pixel (scipy.ndimage's mode="mirror"). Written as a sum of shifted
    copies (the kernel has a handful of taps), so it runs on any xp. Returns an array like x.
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


class GaussianBlur(InputModifier):
    """Every ``every`` steps, blur x - ref with a Gaussian of std ``sigma`` pixels.

    Yosinski et al. (2015, sec. 3, theta_b_width and theta_b_every): cheap removal of the
    high-frequency content that the gradient adds.
    """

    name = "gaussian_blur"
    _old_weight = "sigma"

    def __init__(self, sigma: float = 0.5, every: int = 4, *, weight=None):
        if weight is not None:
            sigma = _renamed_weight("GaussianBlur", "sigma", weight)
        self.sigma, self.every = float(sigma), int(every)
        if not (np.isfinite(self.sigma) and self.sigma > 0) or self.every < 1:
            raise MinicnnError(f"gaussian_blur: expected sigma > 0 and every >= 1, got {sigma}, {every}")

    def after(self, x, step, ref):
        if (step + 1) % self.every:
            return x
        return ref + gaussian_blur(x - ref, self.sigma)

    def __repr__(self) -> str:
        return f"GaussianBlur(sigma={self.sigma:g}, every={self.every})"


class Clip(InputModifier):
    """After each step, clip pixel values to [low, high] (in input space; e.g. 0..1 for "unit")."""

    name = "clip"

    def __init__(self, low: float = 0.0, high: float = 1.0):
        self.low, self.high = float(low), float(high)
        if not self.low < self.high:
            raise MinicnnError(f"clip: expected low < high, got {low}, {high}")

    def after(self, x, step, ref):
        xp = get_xp(x)
        return xp.clip(x, self.low, self.high)

    def __repr__(self) -> str:
        return f"Clip(low={self.low:g}, high={self.high:g})"


class NormClip(InputModifier):
    """After each step, reset to the mean image the pixels whose norm across channels (of x - ref)
    lies below the ``percentile`` (0..100) of that image's pixel norms (Yosinski et al. 2015,
    sec. 3, theta_n_pct): only the strongest pixels survive.
    """

    name = "norm_clip"
    _old_weight = "percentile"

    def __init__(self, percentile: float = 20.0, *, weight=None):
        if weight is not None:
            percentile = _renamed_weight("NormClip", "percentile", weight)
        self.percentile = float(percentile)
        if not 0 <= self.percentile <= 100:  # also refuses NaN
            raise MinicnnError(f"norm_clip: percentile must be in [0, 100], got {percentile}")

    def after(self, x, step, ref):
        xp = get_xp(x)
        d = x - ref
        norms = xp.sqrt((d * d).sum(axis=1))  # (N, H, W)
        cut = xp.percentile(norms.reshape(len(x), -1), self.percentile, axis=1)
        keep = (norms >= cut[:, None, None])[:, None]
        return ref + d * keep

    def __repr__(self) -> str:
        return f"NormClip(percentile={self.percentile:g})"
