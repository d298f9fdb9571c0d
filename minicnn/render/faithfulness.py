"""The faithfulness curves as a picture: one line per method over the share of pixels changed.

``faithfulness_plot`` draws what RISE's figures draw (Petsiuk et al. 2018, fig. 4): the target's
probability as the pixels a map ranks first are deleted (or inserted, flipped, imputed), one curve
per method, with each method's AUC in the legend. The curve is the mean over the images of a
``tools.faithfulness.FaithfulnessResult`` (every image shares the fractions). Curves longer than
``MAX_POINTS`` are drawn through every k-th point (and the last), so a 224x224 image's 3,137-point
region curve still fits a page; the caption's AUC is always the full curve's.
"""

from __future__ import annotations

import math

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.render.figures import titled
from minicnn.render.lines import STEP_WIDTH, line_chart

MAX_POINTS = 41  # points drawn per curve at most
PLOT_WIDTH = 600  # pixels the steps share when there are many of them
MAX_LABELS = 11  # step captions at most (about every tenth point of a long curve)

# most relevant first; a least-relevant-first curve (settings["order"] == "lerf") reads the other way
LOWER_IS_BETTER = {"deletion": True, "insertion": False, "pixel_flipping": True, "road": True,
                   "region_perturbation": True}  # fmt: skip


def shown_points(count: int, points: int = MAX_POINTS) -> np.ndarray:
    """Indices (int64) of the points of a ``count``-point curve that are drawn: all of them when
    there are at most ``points``, else every k-th from the first, k the smallest stride that keeps
    at most ``points - 1`` of them, and the last point."""
    if count <= points:
        return np.arange(count, dtype=np.int64)
    stride = math.ceil((count - 1) / (points - 2))
    kept = np.arange(0, count - 1, stride, dtype=np.int64)
    return np.append(kept, count - 1)


def step_width(count: int) -> int:
    """Pixels between two drawn points: the line chart's spacing, narrower for long curves."""
    return max(4, min(STEP_WIDTH, PLOT_WIDTH // max(count, 1)))


def step_labels(fractions) -> list[str]:
    """A caption (the fraction, two decimals) at every point of a short curve, else at about
    ``MAX_LABELS`` evenly spaced points (always the first and the last); "" elsewhere."""
    n = len(fractions)
    every = 1 if n <= MAX_LABELS else math.ceil((n - 1) / (MAX_LABELS - 1))
    return [f"{f:.2f}" if k % every == 0 or k == n - 1 else "" for k, f in enumerate(fractions)]


def faithfulness_plot(results: dict, title: str | None = None) -> np.ndarray:
    """One metric's curves, one line per method.

    results: a method's caption -> FaithfulnessResult of the same metric over the same images
    (curves (N, S) of probabilities, ``output="probability"``; every result with the same
    fractions (S,)). The line is the mean curve over the N images, its legend entry the caption and
    the mean AUC; the horizontal axis is the share of pixels changed, the vertical the target's
    probability (0 to 1). title: None for the default (the metric, which way is better, N and the
    x axis), "" for none. Returns (H, W, 3) uint8.
    """
    if not results:
        raise MinicnnError("the faithfulness plot needs at least one method's result")
    first = next(iter(results.values()))
    for name, res in results.items():
        if res.output != "probability":
            raise MinicnnError(
                f"{name!r}: the faithfulness plot draws probabilities (0 to 1), got output {res.output!r}"
            )
        if res.metric != first.metric:
            raise MinicnnError(f"{name!r}: metric {res.metric!r}, expected {first.metric!r} as the others")
        if not np.array_equal(res.fractions, first.fractions) or res.curves.shape != first.curves.shape:
            raise MinicnnError(
                f"{name!r}: its curves are not over the same images and fractions as the others"
            )
    shown = shown_points(len(first.fractions))
    curves = {
        f"{name} (AUC {float(np.mean(res.auc)):.3f})": np.asarray(res.curves, np.float64).mean(axis=0)[shown]
        for name, res in results.items()
    }
    picture = line_chart(
        curves, step_labels(first.fractions[shown]), "", lo=0.0, hi=1.0, step_width=step_width(len(shown))
    )
    if title is None:
        lower = LOWER_IS_BETTER.get(first.metric)
        order = first.settings.get("order")
        if lower is not None and order == "lerf":
            lower = not lower
        which = "" if lower is None else f" ({'lower' if lower else 'higher'} AUC is better)"
        thinned = "" if len(shown) == len(first.fractions) else f", one point in {shown[1]} drawn"
        name = first.metric.replace("_", " ") + (f" {order}" if order else "")
        title = (
            f"{name}{which}: the target's probability, mean over "
            f"{first.curves.shape[0]} image(s), against the share of pixels changed{thinned}"
        )
    return titled(picture, title)
