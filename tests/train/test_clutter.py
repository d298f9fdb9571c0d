"""The digits-in-clutter generator: boxes are exactly the digit's pixels, and it is reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.errors import MinicnnError
from minicnn.train.clutter import make_clutter
from minicnn.train.data import load_heldout
from minicnn.train.samples import CLUTTER_FILE


def find_digit(canvas, digit):
    """Brute force: every (top, left) where the canvas equals the digit on its bright pixels
    (>= 64: brighter than the noise, and distractors never touch the digit)."""
    ink = digit >= 64
    size = canvas.shape[0]
    hits = []
    for top in range(size - 27):
        for left in range(size - 27):
            window = canvas[top : top + 28, left : left + 28]
            if np.array_equal(window[ink], digit[ink]):
                hits.append((top, left))
    return hits


def check_boxes(sample, digits, count):
    for i in range(count):
        digit = digits[sample["index"][i]]
        hits = find_digit(sample["images"][i], digit)
        assert len(hits) == 1, f"canvas {i}: digit found at {hits}"
        top, left = hits[0]
        ys, xs = np.nonzero(digit)
        expected = [left + xs.min(), top + ys.min(), left + xs.max() + 1, top + ys.max() + 1]
        assert sample["boxes"][i].tolist() == expected, f"canvas {i}"
        # every pixel of the digit is on the canvas, unchanged or brighter, inside the box
        x0, y0, x1, y1 = expected
        placed = np.zeros_like(sample["images"][i])
        placed[top : top + 28, left : left + 28] = digit
        assert placed[:y0].max() == placed[y1:].max(initial=0) == 0
        assert placed[:, :x0].max() == placed[:, x1:].max(initial=0) == 0
        assert (sample["images"][i] >= placed).all()


def test_shipped_clutter_boxes_contain_the_digit():
    digits, labels = load_heldout()
    with np.load(CLUTTER_FILE) as f:
        sample = {k: f[k] for k in f.files}
    assert sample["images"].shape == (200, 84, 84) and sample["images"].dtype == np.uint8
    np.testing.assert_array_equal(sample["labels"], labels[sample["index"]])
    check_boxes(sample, digits, 12)


def test_generator_is_seeded_and_matches_the_shipped_file():
    digits, labels = load_heldout()
    a = make_clutter(digits, labels, n=5, seed=3)
    b = make_clutter(digits, labels, n=5, seed=3)
    c = make_clutter(digits, labels, n=5, seed=4)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["images"], c["images"])
    check_boxes(a, digits, 5)
    with np.load(CLUTTER_FILE) as f:
        shipped = make_clutter(digits, labels, n=200, seed=int(f["seed"]))
        np.testing.assert_array_equal(shipped["images"], f["images"])
        np.testing.assert_array_equal(shipped["boxes"], f["boxes"])


def test_bad_input():
    digits, labels = load_heldout()
    with pytest.raises(MinicnnError, match="uint8"):
        make_clutter(digits.astype(np.float32), labels)
    with pytest.raises(MinicnnError, match="28, 28"):
        make_clutter(digits[:, :20, :20], labels)
    with pytest.raises(MinicnnError, match="canvas size"):
        make_clutter(digits, labels, size=30)
