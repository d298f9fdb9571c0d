"""Weakly supervised localisation (Simonyan et al. 2013, sec. 3.1): the graph cut is the exact
energy minimum (brute force over all labellings), connected components equal a naive flood fill,
and on the shipped clutter canvases the graph cut beats the saliency-threshold baseline.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.tools.localize import (
    box_iou,
    cut_costs,
    label_components,
    largest_component_box,
    min_cut,
    saliency_box,
)


def flood_fill(mask):
    """Naive reference: 4-connected labels numbered in row-major order of their first pixel."""
    h, w = mask.shape
    labels = np.zeros((h, w), int)
    count = 0
    for y in range(h):
        for x in range(w):
            if mask[y, x] and not labels[y, x]:
                count += 1
                stack = [(y, x)]
                while stack:
                    cy, cx = stack.pop()
                    if 0 <= cy < h and 0 <= cx < w and mask[cy, cx] and not labels[cy, cx]:
                        labels[cy, cx] = count
                        stack += [(cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)]
    return labels, count


@pytest.mark.parametrize("density", [0.3, 0.55, 0.8])
def test_components_equal_flood_fill(density):
    mask = np.random.default_rng(int(density * 10)).random((23, 31)) < density
    labels, count = label_components(mask)
    ref, ref_count = flood_fill(mask)
    assert count == ref_count and np.array_equal(labels, ref)


def test_largest_component_box_and_iou():
    mask = np.zeros((10, 12), bool)
    mask[1:3, 1:3] = True  # 4 pixels
    mask[4:9, 6] = True  # 5 pixels, a vertical bar: the largest
    mask[8, 7:9] = True  # joined to the bar: 7 pixels, box x 6..8, y 4..8
    assert largest_component_box(mask).tolist() == [6, 4, 9, 9]
    assert largest_component_box(np.zeros((4, 5), bool)).tolist() == [0, 0, 5, 4]
    assert np.isclose(box_iou([0, 0, 2, 2], [1, 1, 3, 3]), 1 / 7)
    assert np.isclose(box_iou([0, 0, 4, 4], [0, 0, 4, 2]), 0.5)
    assert box_iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0


@pytest.mark.parametrize("seed", range(4))
def test_min_cut_is_the_brute_force_minimum(seed):
    """Every labelling of a 3x4 grid that respects the seeds: none has a lower energy."""
    rng = np.random.default_rng(seed)
    h, w = 3, 4
    cost_fg, cost_bg = rng.random((h, w)) * 3, rng.random((h, w)) * 3
    right, down = rng.random((h, w)), rng.random((h, w))
    right[:, -1] = down[-1, :] = 0
    fg = np.zeros((h, w), bool)
    bg = np.zeros((h, w), bool)
    fg[1, 1], bg[0, 3] = True, True

    def energy(lab):
        unary = np.where(lab, cost_fg, cost_bg).sum()
        pair = (right[:, :-1] * (lab[:, 1:] != lab[:, :-1])).sum()
        return unary + pair + (down[:-1, :] * (lab[1:, :] != lab[:-1, :])).sum()

    best = min(
        energy(lab)
        for bits in itertools.product([False, True], repeat=h * w)
        if (lab := np.array(bits).reshape(h, w))[fg].all() and not lab[bg].any()
    )
    mask = min_cut(cost_fg, cost_bg, right, down, fg, bg)
    assert mask[fg].all() and not mask[bg].any()
    assert np.isclose(energy(mask), best)


def test_colour_model_costs():
    """Unary costs are -log of the add-half smoothed seed histograms; edges fall across contrast."""
    image = np.zeros((1, 4, 4))
    image[0, :, 2:] = 1.0
    fg = np.zeros((4, 4), bool)
    fg[:, 3] = True  # 4 bright seeds
    bg = np.zeros((4, 4), bool)
    bg[:, 0] = True  # 4 dark seeds
    cost_fg, cost_bg, right, down = cut_costs(image, fg, bg, bins=2, smoothness=2.0)
    assert np.allclose(cost_fg[:, 2:], -np.log(4.5 / 5)) and np.allclose(cost_fg[:, :2], -np.log(0.5 / 5))
    assert np.allclose(cost_bg[:, :2], -np.log(4.5 / 5)) and np.allclose(cost_bg[:, 2:], -np.log(0.5 / 5))
    assert np.allclose(down[:-1], 2.0) and np.allclose(right[:, [0, 2]], 2.0)
    assert (right[:, 1] < 2.0 * np.exp(-1)).all() and (right[:, 3] == 0).all()


def test_synthetic_square(make_small_vgg):
    """A bright square on a dark, noisy canvas, with a saliency peak inside it: the box is the square."""
    rng = np.random.default_rng(0)
    net = make_small_vgg(seed=0, channels=1, size=32)
    x = (rng.random((1, 1, 32, 32)) * 0.2).astype(np.float32)
    x[0, 0, 10:20, 5:17] = 0.9
    sal = np.zeros((1, 32, 32), np.float32)
    sal[0, 12:18, 7:16] = 1.0 + rng.random((6, 9))  # 54 pixels: the 5% above the 95% quantile
    sal[0] += rng.random((32, 32)) * 0.01
    boxes, masks = mc.localize(net, x, 0, saliency_map=sal)
    assert boxes[0].tolist() == [5, 10, 17, 20]
    assert box_iou(saliency_box(sal[0]), [5, 10, 17, 20]) < 0.5  # the seeds alone are too small


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fg_quantile": 0.2}, "quantile"),
        ({"bg_quantile": 0.0}, "quantile"),
        ({"bins": 1}, "bins"),
        ({"smoothness": -1.0}, "smoothness"),
        ({"target": 5}, "out of range"),
        ({"saliency_map": np.zeros((1, 8, 8))}, "saliency_map"),
        ({"x": np.zeros((1, 3, 2, 2), np.float32)}, "smaller"),
    ],
)
def test_bad_input(make_small_vgg, kwargs, message):
    args = {"x": np.ones((1, 3, 16, 16), np.float32), "target": 1, **kwargs}
    with pytest.raises(MinicnnError, match=message):
        mc.localize(make_small_vgg(seed=0), **args)


# IoU >= 0.5 rate of mc.localize (defaults) with the shipped GAP model on the 200 shipped clutter
# canvases, target = the true label, measured by benchmarks/localization.py: 0.815 (163 boxes;
# saliency-threshold baseline 0.005). The floor is that rate rounded down to 0.80: four more
# failures (or a retrained model that localises worse) fail the test.
CLUTTER_FLOOR = 0.80


def test_clutter_canvases_beat_the_saliency_baseline(gap_net):
    from minicnn.paths import WEIGHTS_DIR

    data = np.load(WEIGHTS_DIR / "clutter.npz")
    x = (data["images"][:, None] / 255.0).astype(gap_net.dtype)
    labels = [int(v) for v in data["labels"]]
    sal = mc.saliency(gap_net, x, labels)
    boxes, _ = mc.localize(gap_net, x, labels, saliency_map=sal)
    ours = float((box_iou(boxes, data["boxes"]) >= 0.5).mean())
    baseline = float((box_iou(np.array([saliency_box(s) for s in sal]), data["boxes"]) >= 0.5).mean())
    assert ours > baseline, (ours, baseline)
    assert CLUTTER_FLOOR is not None and ours >= CLUTTER_FLOOR, ours
