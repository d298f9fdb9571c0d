"""Keys that say what a picture's colours mean: a colour bar with its range and unit under a heat
map, and a legend of swatches under a map of categories (the top class of occlusion).

A heat map without its scale cannot be read: "bright" says nothing about how much, nor in what
unit. The bar sits under the panel and has the panel's width, so a row of panels keeps its layout.
"""

from __future__ import annotations

import numpy as np

from minicnn.render.colors import _lut
from minicnn.render.grid import WHITE, _font, _text_size

BAR_HEIGHT = 10  # pixels of colour gradient


def _fmt(value: float, digits: int = 3) -> str:
    """A tick label: ``digits`` significant digits, no '-0'."""
    text = f"{value:.{digits}g}"
    return "0" if text in ("-0", "0.0", "-0.0") else text


def end_labels(lo: float, hi: float) -> tuple[str, str]:
    """The labels of a bar's two ends: 3 significant digits, more (up to 7) until each label is
    within 5% of the bar's span of its value (a probability map from 0.99912 to 0.99981 is
    labelled 0.9991 and 0.9998, not 0.999 and 1)."""
    for digits in range(3, 8):
        left, right = _fmt(lo, digits), _fmt(hi, digits)
        tolerance = 0.05 * (hi - lo)
        if abs(float(left) - lo) <= tolerance and abs(float(right) - hi) <= tolerance:
            break
    return left, right


def colorbar(width: int, lo: float, hi: float, cmap: str = "inferno", unit: str = "", size: int = 11):
    """A horizontal colour bar ``width`` pixels wide: the colormap from ``lo`` (left) to ``hi``
    (right), with both ends written under it and ``unit`` (what the colours measure) centred
    between them. Returns (h, width, 3) uint8 on white."""
    from PIL import Image, ImageDraw

    ramp = _lut(cmap)[np.round(np.linspace(0, 255, max(width - 8, 2))).astype(np.intp)]
    text_h = _text_size("Ag", size)[1]
    strip = Image.new("RGB", (width, BAR_HEIGHT + text_h + 8), (WHITE,) * 3)
    strip.paste(Image.fromarray(np.repeat(ramp[None], BAR_HEIGHT, axis=0)), (4, 2))
    draw = ImageDraw.Draw(strip)
    y = BAR_HEIGHT + 4
    left, right = end_labels(lo, hi)
    draw.text((4, y), left, fill=(0, 0, 0), font=_font(size))
    draw.text((width - 4 - _text_size(right, size)[0], y), right, fill=(0, 0, 0), font=_font(size))
    room = width - 16 - _text_size(left, size)[0] - _text_size(right, size)[0]
    while unit and _text_size(unit, size)[0] > room and len(unit) > 4:  # shorten rather than overlap
        unit = unit[:-4] + "..."
    if unit and _text_size(unit, size)[0] <= room:
        draw.text(((width - _text_size(unit, size)[0]) // 2, y), unit, fill=(60, 60, 60), font=_font(size))
    return np.asarray(strip)


def with_colorbar(panel, lo: float, hi: float, cmap: str = "inferno", unit: str = "") -> np.ndarray:
    """``panel`` (H, W, 3) uint8 with its colour bar (see ``colorbar``) underneath."""
    panel = np.asarray(panel)
    return np.concatenate([panel, colorbar(panel.shape[1], lo, hi, cmap, unit)], axis=0)


def legend(entries, width: int, size: int = 11) -> np.ndarray:
    """Swatches and names, wrapped to ``width`` pixels: entries are (rgb (3,) uint8, text) pairs.
    Returns (h, width, 3) uint8 on white."""
    from PIL import Image, ImageDraw

    text_h = _text_size("Ag", size)[1]
    line_h = max(text_h, 10) + 4
    rows, row, x = [], [], 4
    for rgb, text in entries:
        w = 14 + _text_size(text, size)[0] + 10
        if row and x + w > width:
            rows.append(row)
            row, x = [], 4
        row.append((rgb, text, x))
        x += w
    if row:
        rows.append(row)
    strip = Image.new("RGB", (width, max(1, len(rows)) * line_h + 4), (WHITE,) * 3)
    draw = ImageDraw.Draw(strip)
    for r, items in enumerate(rows):
        y = 2 + r * line_h
        for rgb, text, x0 in items:
            draw.rectangle((x0, y + 1, x0 + 10, y + 11), fill=tuple(int(c) for c in rgb), outline=(0, 0, 0))
            draw.text((x0 + 14, y), text, fill=(0, 0, 0), font=_font(size))
    return np.asarray(strip)


def with_legend(panel, entries) -> np.ndarray:
    """``panel`` (H, W, 3) uint8 with the legend of ``entries`` (see ``legend``) underneath."""
    panel = np.asarray(panel)
    return np.concatenate([panel, legend(entries, panel.shape[1])], axis=0)
