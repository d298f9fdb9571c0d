"""The figures of the model parameter randomisation test (Adebayo et al. 2018, figs. 2 and 4).

``randomization_figure``: one row per saliency method, one column per step: the trained network's
map first, then the maps after each layer (cascading: and every layer above it) is re-initialised,
from the top down. As in the paper, each map is shown as |map| scaled to its own maximum (grey
scale, white = largest), so what changes from column to column is the structure, not the overall
size.

``result_plot``: the paper's similarity curves (a ``lines.line_chart``): one line per method over
the steps, the similarity with the trained network's map on the vertical axis, the layer names
below, the protocol of the comparison in the title.
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.render.figures import titled
from minicnn.render.grid import grid
from minicnn.render.images import to_rgb, upscale
from minicnn.render.lines import line_chart

CELL = 84  # tiles are upscaled by an integer factor to about this size


def unit_abs_rgb(values) -> np.ndarray:
    """(H, W) map -> (H, W, 3) uint8 grey: |map| / max |map| (an all-zero map is black)."""
    a = np.abs(np.asarray(values, np.float64))
    top = a.max()
    return to_rgb(a / top if top > 0 else a)


def randomization_figure(image, maps: dict, steps: list, titles: dict | None = None) -> np.ndarray:
    """A grid: the input, then for each method a row of its maps over the steps.

    image: the input as displayed (H, W, 3) uint8 (or anything ``to_rgb`` takes); maps: method ->
    (steps + 1, H, W) maps of ONE image, step 0 the trained network; steps: the step captions
    (len steps + 1, e.g. ["trained", "predictions", "fc1", ...]); titles: method -> row caption.
    Returns (H', W', 3) uint8: the first column (captioned with the method) is step 0, the others
    are captioned with their step; a title above says so.
    """

    if not maps:
        raise MinicnnError("the randomisation figure needs at least one method")
    titles = titles or {}
    columns = len(steps)
    for m, v in maps.items():
        if np.shape(v)[0] != columns:
            raise MinicnnError(f"method {m!r}: expected {columns} maps (one per step), got {np.shape(v)[0]}")
    first = to_rgb(image)
    f = max(1, CELL // max(first.shape[:2]))
    tiles, labels = [upscale(first, f)], ["input"]
    tiles += [np.full_like(tiles[0], 255)] * (columns - 1)  # the first row holds the input alone
    labels += [""] * (columns - 1)
    for m, values in maps.items():
        for k, v in enumerate(values):
            tiles.append(upscale(unit_abs_rgb(v), f))
            labels.append(titles.get(m, m) if k == 0 else steps[k])
    picture = grid(tiles, labels, ncols=columns, size=10)
    return titled(picture, f"first column: {steps[0]}; then re-initialised: {', '.join(steps[1:])}")


def result_plot(res, measure: str = "spearman_abs", titles: dict | None = None) -> np.ndarray:
    """``line_chart`` of a ``tools.sanity.RandomizationResult``: one line per method over the
    steps (trained, then each re-initialised layer), titled with the test, order and protocol."""
    from minicnn.tools.sanity import TITLES

    titles = titles or {}
    kind = "cascading" if res.cascade else "independent"
    curves = {titles.get(m, m): res.similarity[m][measure] for m in res.methods}
    title = f"{kind} randomisation, {res.order}: {TITLES[measure]}; protocol {res.protocol}"
    return line_chart(curves, ["trained", *res.layers], title)
