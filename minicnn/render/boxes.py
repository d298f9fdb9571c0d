"""Bounding boxes drawn on an image: the result of weakly supervised localisation.

Simonyan et al. (2013, sec. 3.1, fig. 3) show the box found from the saliency map by graph cut;
drawing the ground-truth box beside it in another colour makes the IoU visible.
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.render.images import to_rgb

GREEN, RED, BLUE = (0, 200, 0), (230, 30, 30), (40, 90, 255)


def draw_boxes(image, boxes, colors=None, scale: int = 1, width: int = 2) -> np.ndarray:
    """Draw rectangles on a copy of ``image``.

    image: anything ``to_rgb`` accepts (already upscaled by ``scale`` if the boxes are in the
    original pixel grid). boxes: sequence of (x0, y0, x1, y1) with exclusive ends, like slices
    ``image[y0:y1, x0:x1]``, in original pixels. colors: one RGB triple per box (default green).
    Returns (H, W, 3) uint8.
    """
    from PIL import Image, ImageDraw

    rgb = Image.fromarray(to_rgb(image))
    draw = ImageDraw.Draw(rgb)
    boxes = [tuple(float(v) for v in b) for b in boxes]
    colors = list(colors) if colors is not None else [GREEN] * len(boxes)
    if len(colors) != len(boxes):
        raise MinicnnError(f"expected {len(boxes)} colours, one per box, got {len(colors)}")
    for box, color in zip(boxes, colors, strict=True):
        if len(box) != 4 or box[2] < box[0] or box[3] < box[1]:
            raise MinicnnError(f"expected a box (x0, y0, x1, y1) with x0 <= x1, y0 <= y1, got {box}")
        x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=tuple(color), width=width)
    return np.asarray(rgb)
