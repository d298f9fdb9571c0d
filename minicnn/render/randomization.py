"""The figures of the model parameter randomisation test (Adebayo et al. 2018, figs. 2 and 4).

``randomization_figure``: one row per saliency method, one column per step: the trained network's
map first, then the maps after each layer (cascading: and every layer above it) is re-initialised,
from the top down. As in the paper, each map is shown as |map| scaled to its own maximum (grey
scale, white = largest), so what changes from column to column is the structure, not the overall
size.

``similarity_plot``: the paper's similarity curves: one line per method over the steps, the
similarity with the trained network's map on the vertical axis, the layer names below, the
protocol of the comparison in the title. The same plot serves any curve over named steps (class
similarity over network depth).
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.render.figures import titled
from minicnn.render.grid import grid
from minicnn.render.images import to_rgb, upscale

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


PLOT_HEIGHT = 260  # pixels of the plotting area
STEP_WIDTH = 46  # pixels between two steps
MARGIN = 44  # left margin for the axis labels
MARKER_SPACING = 10  # closer steps get 4-pixel dots: 6-pixel markers would merge into a band


def _rotated_label(text: str, size: int = 11) -> np.ndarray:
    """``text`` written black on white and turned 90 degrees (read bottom to top): (h, w, 3) uint8."""
    from PIL import Image, ImageDraw

    from minicnn.render.grid import _font, _text_size

    w, h = _text_size(text, size)
    img = Image.new("RGB", (w + 4, h + 6), "white")
    ImageDraw.Draw(img).text((2, 0), text, fill="black", font=_font(size))
    return np.asarray(img.rotate(90, expand=True))


def similarity_plot(curves: dict, steps: list, title: str, lo: float = -0.2, hi: float = 1.0,
                    step_width: int = STEP_WIDTH) -> np.ndarray:  # fmt: skip
    """A line chart: curves maps a method's caption to its values over ``steps`` (the step names, in
    order; an empty name leaves its step unlabelled); the vertical axis runs from ``lo`` to ``hi``
    with grid lines at every 0.2; NaN values leave a gap. Steps are ``step_width`` pixels apart; each
    value has a marker, a small dot where steps are closer than ``MARKER_SPACING``. Returns
    (H, W, 3) uint8 with the legend (one colour per curve) and ``title``."""
    from PIL import Image, ImageDraw

    from minicnn.render.colors import class_colors
    from minicnn.render.grid import _font

    if not curves:
        raise MinicnnError("the similarity plot needs at least one curve")
    for name, values in curves.items():
        if len(values) != len(steps):
            raise MinicnnError(
                f"curve {name!r}: expected {len(steps)} values (one per step), got {len(values)}"
            )
    if not hi > lo:
        raise MinicnnError(f"the plot's range must be increasing, got {lo} to {hi}")
    if isinstance(step_width, bool) or not isinstance(step_width, (int, np.integer)) or step_width < 1:
        raise MinicnnError(f"step_width must be a positive number of pixels, got {step_width!r}")
    labels = [_rotated_label(str(s)) if str(s) else None for s in steps]
    below = max((lab.shape[0] for lab in labels if lab is not None), default=0) + 8
    width = MARGIN + step_width * len(steps) + 16
    legend = 18 * len(curves) + 8
    img = Image.new("RGB", (max(width, 260), 10 + PLOT_HEIGHT + below + legend), "white")
    draw = ImageDraw.Draw(img)
    font = _font(11)

    def y_of(v: float) -> float:
        return 10 + (hi - v) / (hi - lo) * PLOT_HEIGHT

    def x_of(k: int) -> float:
        return MARGIN + step_width * (k + 0.5)

    tick = np.ceil(lo / 0.2) * 0.2
    while tick <= hi + 1e-9:
        y = y_of(tick)
        draw.line([(MARGIN, y), (width - 16, y)], fill=(0, 0, 0) if abs(tick) < 1e-9 else (220, 220, 220))
        draw.text((4, y - 6), f"{tick:.1f}", fill="black", font=font)
        tick += 0.2
    draw.line([(MARGIN, 10), (MARGIN, 10 + PLOT_HEIGHT)], fill="black")
    colors = class_colors(len(curves))
    for values, color in zip(curves.values(), colors):
        rgb = tuple(int(c) for c in color)
        points = [
            (x_of(k), y_of(float(np.clip(v, lo, hi)))) if np.isfinite(v) else None
            for k, v in enumerate(values)
        ]
        for p, q in zip(points, points[1:]):
            if p is not None and q is not None:
                draw.line([p, q], fill=rgb, width=2)
        r = 3 if step_width >= MARKER_SPACING else 2  # a small dot keeps a lone value (NaN around) seen
        for p in points:
            if p is not None:
                draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=rgb)
    picture = np.asarray(img).copy()
    for k, lab in enumerate(labels):
        if lab is None:
            continue
        x0 = int(x_of(k) - lab.shape[1] / 2)
        picture[10 + PLOT_HEIGHT + 4 : 10 + PLOT_HEIGHT + 4 + lab.shape[0], x0 : x0 + lab.shape[1]] = lab
    img = Image.fromarray(picture)
    draw = ImageDraw.Draw(img)
    for k, (name, color) in enumerate(zip(curves, colors)):
        y = 10 + PLOT_HEIGHT + below + 18 * k
        draw.rectangle([MARGIN, y + 3, MARGIN + 14, y + 11], fill=tuple(int(c) for c in color))
        draw.text((MARGIN + 20, y), str(name), fill="black", font=font)
    return titled(np.asarray(img), title)


def result_plot(res, measure: str = "spearman_abs", titles: dict | None = None) -> np.ndarray:
    """``similarity_plot`` of a ``tools.sanity.RandomizationResult``: one line per method over the
    steps (trained, then each re-initialised layer), titled with the test, order and protocol."""
    from minicnn.tools.sanity import TITLES

    titles = titles or {}
    kind = "cascading" if res.cascade else "independent"
    curves = {titles.get(m, m): res.similarity[m][measure] for m in res.methods}
    title = f"{kind} randomisation, {res.order}: {TITLES[measure]}; protocol {res.protocol}"
    return similarity_plot(curves, ["trained", *res.layers], title)
