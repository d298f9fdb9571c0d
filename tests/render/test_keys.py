"""Figures that explain themselves (issue 17): colour bars that are the heat map's own colours from
its low to its high value, legends with one swatch per class, titles wrapped to the figure, and
overlays that stay visible when a few pixels dominate the map."""

from __future__ import annotations

import numpy as np
from PIL import Image

from minicnn.render import figures, heatmap, overlay
from minicnn.render.colors import class_colors
from minicnn.render.keys import BAR_HEIGHT, colorbar, end_labels, legend, with_colorbar


def test_colorbar_runs_through_the_heat_map_colours_from_lo_to_hi():
    bar = colorbar(200, 0.0, 1.0, "inferno", "p(cat)")
    assert bar.shape[1] == 200 and bar.dtype == np.uint8
    ramp = bar[2 + BAR_HEIGHT // 2, 4:196].astype(int)  # the gradient row, inside the margins
    ends = heatmap(np.array([[0.0, 1.0]]), "inferno")[0].astype(int)  # the colours of lo and hi
    np.testing.assert_array_equal(ramp[0], ends[0])
    np.testing.assert_array_equal(ramp[-1], ends[1])
    text = bar[2 + BAR_HEIGHT + 2 :]
    assert (text < 100).any(), "the range and the unit are written under the bar"


def test_with_colorbar_keeps_the_panel_and_its_width():
    panel = np.full((30, 120, 3), 7, np.uint8)
    out = with_colorbar(panel, -2.0, 2.0, "colorbrewer:RdBu_r", "score drop")
    assert out.shape[1] == 120 and out.shape[0] > 30 + BAR_HEIGHT
    np.testing.assert_array_equal(out[:30], panel)


def test_legend_draws_one_swatch_per_class_in_its_colour():
    colors = class_colors(10)
    strip = legend([(colors[c], f"{c}: class {c}") for c in (2, 5, 9)], width=400)
    pixels = {tuple(p) for p in strip.reshape(-1, 3)}
    for c in (2, 5, 9):
        assert tuple(colors[c]) in pixels
    assert tuple(colors[0]) not in pixels  # a class not on the map is not in its legend


def test_titles_wrap_to_the_figure_width():
    picture = np.full((50, 120, 3), 255, np.uint8)
    one = figures.titled(picture, "short")
    two = figures.titled(picture, "a much longer title that cannot fit on one line of this picture")
    assert one.shape[1] == two.shape[1] == 120 and two.shape[0] > one.shape[0] > 50


def test_overlay_of_a_sparse_map_stays_visible():
    """A photo's saliency: one pixel 50x above a faint region. Scaled by the maximum (percentile
    100) the region vanishes; scaled by the 99th percentile it is coloured."""
    image = np.asarray(Image.new("RGB", (100, 100), (120, 120, 120)))
    values = np.zeros((100, 100))
    values[40:60, 40:60] = 1.0
    values[5, 5] = 50.0
    grey = image.mean(axis=2)
    changed = lambda o: (np.abs(o.astype(float).mean(axis=2) - grey) > 10)[40:60, 40:60].mean()  # noqa: E731
    assert changed(overlay(image, values, percentile=100.0)) < 0.05
    assert changed(overlay(image, values)) > 0.95


def test_occlusion_probability_panel_spans_its_own_values():
    """A confident network's occlusion map: p = 0.90 where the left half is hidden, 0.95 for the
    right half. On a fixed 0..1 scale both halves are nearly the same colour (inferno 230 and 242
    of 255); scaled to the map they are its two ends, each filling half the panel, and the bar's
    labels say 0.9 and 0.95."""
    from minicnn.render.colors import _lut

    image = np.full((28, 28, 3), 128, np.uint8)  # mid-grey: no inferno end colour in the input
    prob = np.full((28, 28), 0.95)
    prob[:, :14] = 0.90
    picture = figures.occlusion_figure(image, prob, np.zeros((28, 28), int), ["zero"], "zero")
    pixels = picture.reshape(-1, 3)
    lut = _lut("inferno")
    area = (28 * 8) ** 2  # the panel: 28 pixels upscaled 8 times
    for end in (lut[0], lut[255]):
        count = int((pixels == end).all(axis=1).sum())
        assert 0.45 * area < count < 0.55 * area + 400, (end, count)  # + its share of the bar
    assert end_labels(0.90, 0.95) == ("0.9", "0.95")


def test_bar_labels_tell_close_ends_apart():
    assert end_labels(0.99912, 0.99981) == ("0.9991", "0.9998")  # 3 digits would write 0.999 and 1
    assert end_labels(-2.0, 2.0) == ("-2", "2")
    assert end_labels(0.5, 0.5) == ("0.5", "0.5")  # a constant map: one value, written at both ends
    assert end_labels(-1e-9, 1e-9) == ("-1e-09", "1e-09")
