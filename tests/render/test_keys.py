"""Figures that explain themselves (issue 17): colour bars that are the heat map's own colours from
its low to its high value, legends with one swatch per class, titles wrapped to the figure, and
overlays that stay visible when a few pixels dominate the map."""

from __future__ import annotations

import numpy as np
from PIL import Image

from minicnn.render import figures, heatmap, overlay
from minicnn.render.colors import class_colors
from minicnn.render.keys import BAR_HEIGHT, colorbar, legend, with_colorbar


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
