"""The line chart (render/lines.py) and the similarity curves drawn with it: each value is drawn
where the axis says, in its method's colour; a NaN leaves a gap; the curves of a
RandomizationResult are its similarities."""

import numpy as np
import pytest
from support import chart_pixel

from minicnn.errors import MinicnnError
from minicnn.render import lines
from minicnn.render import randomization as rr
from minicnn.render.colors import class_colors


def test_values_are_drawn_where_the_axis_says():
    curves = {"a": [1.0, 0.5, np.nan, 0.1], "b": [1.0, 0.9, 0.8, -0.9]}
    picture = lines.line_chart(curves, ["trained", "l1", "l2", "l3"], "")
    colors = class_colors(2)
    assert np.array_equal(chart_pixel(picture, 1.0, 0), colors[1])  # both start at 1: the later curve on top
    for step in (1, 3):
        assert np.array_equal(chart_pixel(picture, curves["a"][step], step), colors[0]), step
    for step, v in enumerate([0.9, 0.8]):
        assert np.array_equal(chart_pixel(picture, v, step + 1), colors[1])
    assert np.array_equal(chart_pixel(picture, -0.2, 3), colors[1])  # -0.9 is clipped to the axis' bottom
    # the gap: halfway between steps 1 and 2 of curve a there is no line of its colour
    y = 10 + (1.0 - 0.5) / 1.2 * lines.PLOT_HEIGHT
    column = picture[:, int(lines.MARGIN + lines.STEP_WIDTH * 2)]
    assert not any(np.array_equal(p, colors[0]) for p in column[int(y) - 30 : int(y) + 30])


def test_result_plot_draws_the_result(make_small_vgg):
    from minicnn.tools.sanity import randomization_test

    net = make_small_vgg(seed=4, size=12, classes=3, gap=True)
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 12)).astype(np.float32)
    res = randomization_test(net, x, "predicted", ["gradient", "deconvnet"], protocol="quantus")
    raw = lines.line_chart(
        {m: res.similarity[m]["spearman_abs"] for m in res.methods}, ["trained", *res.layers], ""
    )
    titled = rr.result_plot(res)
    assert np.array_equal(titled[-raw.shape[0] :], raw)  # the same plot under a title
    assert titled.shape[0] > raw.shape[0]
    colors = class_colors(2)
    for k, v in enumerate(res.similarity["deconvnet"]["spearman_abs"]):
        if -0.2 <= v <= 1.0:
            assert np.array_equal(chart_pixel(raw, v, k), colors[1]), k  # the second curve, drawn last


def test_bad_curves():
    with pytest.raises(MinicnnError, match="expected 3 values"):
        lines.line_chart({"a": [1, 2]}, ["x", "y", "z"], "t")
    with pytest.raises(MinicnnError, match="at least one curve"):
        lines.line_chart({}, ["x"], "t")
