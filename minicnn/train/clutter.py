"""Digits in clutter: large canvases with one digit at a known random place, for localisation.

After the cluttered translated MNIST of Mnih et al. (2014, sec. 4.1): a 28x28 digit is pasted at a
uniformly random position of an 84x84 canvas, among 8x8 fragments of other digits (they look like
strokes of digits, so no single pixel says where the digit is), a few anti-aliased line strokes, and
faint noise; distractors are drawn at 30-50% of full brightness. They never overlap the digit's
box, so the ground truth is unambiguous: the box is the tight bounding box of the digit's
non-zero pixels, (x0, y0, x1, y1) with x1, y1 exclusive (``canvas[y0:y1, x0:x1]`` is the box).
Layers are combined with a pixel-wise maximum, so the digit's pixels are unchanged on the canvas.
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.seeding import make_rng

DIGIT = 28


def _box(digit) -> tuple[int, int, int, int]:
    """Tight box (x0, y0, x1, y1), exclusive ends, of the non-zero pixels of a (28, 28) image."""
    ys, xs = np.nonzero(digit)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _overlaps(a, b, margin: int) -> bool:
    """Whether boxes a and b, (x0, y0, x1, y1), come closer than ``margin`` pixels."""
    return not (
        a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1]
    )


def _line(size: int, p0, p1, width: float) -> np.ndarray:
    """An anti-aliased stroke from p0 to p1 (x, y) on a (size, size) float canvas in [0, 1].

    Intensity falls off linearly with the distance to the segment (over one pixel beyond
    ``width`` / 2), computed for all pixels at once.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    d = p1 - p0
    t = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / max(d @ d, 1e-9), 0.0, 1.0)
    dist = np.hypot(xx - (p0[0] + t * d[0]), yy - (p0[1] + t * d[1]))
    return np.clip(width / 2 + 1.0 - dist, 0.0, 1.0)


def make_clutter(
    digits,
    labels,
    n: int = 200,
    size: int = 84,
    fragments: int = 6,
    strokes: int = 4,
    noise: int = 40,
    contrast: tuple[float, float] = (0.3, 0.5),
    stroke_length: float = 10.0,
    seed: int = 0,
) -> dict:
    """Generate ``n`` cluttered canvases from ``digits`` uint8 (M, 28, 28) with ``labels`` (M,).

    Each canvas shows digit ``index[i]`` at a random position, ``fragments`` 8x8 pieces of other
    digits, ``strokes`` lines (each coordinate of the end point within ``stroke_length`` of the
    start) and uniform noise in [0, noise) on every pixel. Distractors are dimmer than digits: their
    brightness is scaled by a factor drawn from ``contrast`` (bright ones make a global-average-
    pooling classifier add up their evidence with the digit's; see the report in models.py).
    Returns a dict of arrays: ``images`` uint8 (n, size, size), ``boxes`` int32 (n, 4)
    (x0, y0, x1, y1), ``labels`` uint8 (n,), ``index`` int32 (n,) (which digit), ``seed`` int64 ().
    """
    digits = np.asarray(digits)
    if digits.ndim != 3 or digits.shape[1:] != (DIGIT, DIGIT) or digits.dtype != np.uint8:
        raise MinicnnError(f"expected digits uint8 (M, 28, 28), got {digits.dtype} {digits.shape}")
    if len(labels) != len(digits) or len(digits) < 2:
        raise MinicnnError(f"expected at least 2 digits and one label each, got {len(labels)}")
    if size < DIGIT + 8:
        raise MinicnnError(f"canvas size must be at least {DIGIT + 8}, got {size}")
    rng = make_rng(seed)
    index = rng.choice(len(digits), size=n, replace=len(digits) < n)
    images = np.zeros((n, size, size), np.uint8)
    boxes = np.zeros((n, 4), np.int32)
    for i, k in enumerate(index):
        top, left = rng.integers(0, size - DIGIT + 1, size=2)
        x0, y0, x1, y1 = _box(digits[k])
        box = (left + x0, top + y0, left + x1, top + y1)
        canvas = rng.integers(0, max(noise, 1), size=(size, size)).astype(np.uint8)
        placed = 0
        while placed < fragments:  # 8x8 fragments of other digits, kept 2 pixels clear of the box
            other = rng.integers(len(digits))
            if other == k:
                continue
            fy, fx = rng.integers(4, DIGIT - 12, size=2)
            piece = digits[other, fy : fy + 8, fx : fx + 8]
            py, px = rng.integers(0, size - 8 + 1, size=2)
            if piece.max() < 128 or _overlaps((px, py, px + 8, py + 8), box, 2):
                continue
            piece = np.round(piece * rng.uniform(*contrast)).astype(np.uint8)
            np.maximum(canvas[py : py + 8, px : px + 8], piece, out=canvas[py : py + 8, px : px + 8])
            placed += 1
        drawn = 0
        while drawn < strokes:  # short lines that stay clear of the box
            p0 = rng.uniform(0, size, size=2)
            p1 = p0 + rng.uniform(-stroke_length, stroke_length, size=2)
            line = _line(size, p0, p1, width=rng.uniform(1.0, 2.5))
            ys, xs = np.nonzero(line)
            if _overlaps((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), box, 2):
                continue
            stroke = np.round(line * 255 * rng.uniform(*contrast)).astype(np.uint8)
            np.maximum(canvas, stroke, out=canvas)
            drawn += 1
        region = canvas[top : top + DIGIT, left : left + DIGIT]
        np.maximum(region, digits[k], out=region)
        images[i], boxes[i] = canvas, box
    return {
        "images": images,
        "boxes": boxes,
        "labels": np.asarray(labels, np.uint8)[index],
        "index": index.astype(np.int32),
        "seed": np.int64(seed),
    }
