"""The picture of a verification: minicnn's map, the reference map and where they differ most."""

from __future__ import annotations

import numpy as np

from minicnn.render.boxes import draw_boxes
from minicnn.render.colors import heatmap
from minicnn.render.figures import titled
from minicnn.render.grid import hstack
from minicnn.render.images import upscale
from minicnn.render.keys import with_colorbar

RED = (230, 40, 40)


def difference_figure(ours, reference, diff, worst, title: str = "") -> np.ndarray:
    """Three panels: minicnn's map, the reference (same colour scale), |difference| with the worst
    pixel boxed in red.

    ours, reference: (H, W) or (C, H, W) maps of one image (channels shown as max over C of |.|);
    diff: (H, W) |ours - reference| (max over channels); worst: (y, x). Returns (H', W', 3) uint8.
    """

    def plane(a):
        a = np.asarray(a, dtype=np.float64)
        return np.abs(a).max(axis=0) if a.ndim == 3 else a

    a, b, d = plane(ours), plane(reference), np.asarray(diff, dtype=np.float64)
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    factor = max(1, -(-224 // max(d.shape)))
    y, x = worst
    box = [(x * factor - 2, y * factor - 2, (x + 1) * factor + 2, (y + 1) * factor + 2)]
    panels = [
        with_colorbar(upscale(heatmap(a, lo=lo, hi=hi), factor), lo, hi),
        with_colorbar(upscale(heatmap(b, lo=lo, hi=hi), factor), lo, hi),
        with_colorbar(
            draw_boxes(upscale(heatmap(d), factor), box, colors=[RED]), float(d.min()), float(d.max())
        ),
    ]
    return titled(hstack(panels, ["minicnn", "reference", "|difference| (worst boxed)"]), title)
