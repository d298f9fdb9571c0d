"""Pictures: pure functions from arrays to RGB uint8 images (H, W, 3), and one save function.

The tools return arrays; this package turns them into figures like the papers' (heat maps, overlays,
zero-centred reconstructions, labelled grids, boxes). Nothing here computes gradients, so every
tool is testable without looking at pixels, and every picture is testable without a network.
"""

from minicnn.render import figures
from minicnn.render.boxes import draw_boxes
from minicnn.render.colors import class_colors, diverging, heatmap
from minicnn.render.grid import grid, hstack, label_above
from minicnn.render.images import contrast_normalize, to_rgb, upscale
from minicnn.render.overlay import overlay
from minicnn.render.save import save_npy, save_png

__all__ = [
    "class_colors", "contrast_normalize", "diverging", "draw_boxes", "figures", "grid", "heatmap",
    "hstack", "label_above", "overlay", "save_npy", "save_png", "to_rgb", "upscale",
]  # fmt: skip
