"""A line chart over named steps: one line per curve, a legend, a title.

``line_chart`` draws the similarity curves of the randomisation tests (Adebayo et al. 2018, fig. 2;
render/randomization.py), ROAR's accuracy against the share of pixels removed (Hooker et al. 2019;
cli/cmd_roar.py) and the faithfulness curves (render/faithfulness.py): any values over steps that
have names, on a fixed vertical range.
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.render.figures import titled

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


def line_chart(curves: dict, steps: list, title: str, lo: float = -0.2, hi: float = 1.0,
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
        raise MinicnnError("a line chart needs at least one curve")
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
