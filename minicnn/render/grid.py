"""Labelled grids: tiles of equal cell size with a caption above each, or a row of panels.

Used for the papers' figures that are tables of images: class models, one per class (Simonyan et al.
2013, fig. 1), maximised units (Erhan et al. 2009, fig. 3), top-9 projections beside their patches
(Zeiler & Fergus 2013, fig. 2), and reconstructions in three modes next to the input.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.render.images import to_rgb

WHITE = 255


@lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # scalable on Pillow >= 10.1 with FreeType
    except TypeError:
        return ImageFont.load_default()


def _text_size(text: str, size: int) -> tuple[int, int]:
    from PIL import Image, ImageDraw

    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=_font(size))
    return right - left, bottom - top


def label_above(image, text: str, size: int = 12) -> np.ndarray:
    """Add a white strip with ``text`` centred above ``image`` (H, W, 3) uint8; returns uint8."""
    from PIL import Image, ImageDraw

    rgb = to_rgb(image)
    if not text:
        return rgb
    height = _text_size("Ag", size)[1] + 6
    strip = Image.new("RGB", (rgb.shape[1], height), (WHITE,) * 3)
    width = _text_size(text, size)[0]
    ImageDraw.Draw(strip).text(
        (max(0, (rgb.shape[1] - width) // 2), 2), text, fill=(0, 0, 0), font=_font(size)
    )
    return np.concatenate([np.asarray(strip), rgb], axis=0)


def grid(tiles, labels=None, ncols: int | None = None, pad: int = 4, size: int = 12):
    """Arrange images in a grid with an optional caption above each.

    tiles: sequence of images (anything ``to_rgb`` accepts); cells take the largest tile's size,
    smaller tiles sit at the top-left of their cell. labels: one string per tile or None.
    ncols: default ceil(sqrt(n)). Returns (H, W, 3) uint8 on a white background.
    """
    tiles = [to_rgb(t) for t in tiles]
    if not tiles:
        raise MinicnnError("a grid needs at least one image")
    if labels is not None:
        labels = [str(s) for s in labels]
        if len(labels) != len(tiles):
            raise MinicnnError(f"expected {len(tiles)} labels, one per image, got {len(labels)}")
        tiles = [label_above(t, s, size) for t, s in zip(tiles, labels, strict=True)]
    n = len(tiles)
    ncols = int(ncols or np.ceil(np.sqrt(n)))
    nrows = -(-n // ncols)
    ch = max(t.shape[0] for t in tiles)
    cw = max(t.shape[1] for t in tiles)
    out = np.full((nrows * ch + (nrows + 1) * pad, ncols * cw + (ncols + 1) * pad, 3), WHITE, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, ncols)
        y, x = pad + r * (ch + pad), pad + c * (cw + pad)
        out[y : y + t.shape[0], x : x + t.shape[1]] = t
    return out


def hstack(panels, labels=None, pad: int = 4, size: int = 12) -> np.ndarray:
    """Panels side by side in one row, each with an optional caption (a one-row ``grid``)."""
    panels = list(panels)
    return grid(panels, labels, ncols=len(panels), pad=pad, size=size)
