"""The faithfulness curves as a picture (render/faithfulness.py): each method's mean curve is drawn
where the axis says, in its colour, with its AUC in the legend; long curves are thinned to a stated
stride; a plot of mixed or score curves is refused. Also the line chart's step width."""

from __future__ import annotations

import numpy as np
import pytest
from support import chart_pixel

from minicnn.errors import MinicnnError
from minicnn.render import faithfulness as rf
from minicnn.render import lines
from minicnn.render.colors import class_colors
from minicnn.tools.faithfulness import FaithfulnessResult


def result(curves, fractions=None, metric="deletion", output="probability", **settings):
    curves = np.asarray(curves, np.float64)
    f = np.linspace(0, 1, curves.shape[1]) if fractions is None else np.asarray(fractions, np.float64)
    auc = np.array([np.trapezoid(c, f) for c in curves])  # NumPy's trapezoid, not ours
    return FaithfulnessResult(metric, f, curves, auc, np.zeros(len(curves), np.int64), output, settings)


def test_mean_curves_are_drawn_where_the_axis_says_with_their_auc():
    a = result([[1.0, 0.6, 0.2, 0.0, 0.0], [1.0, 0.8, 0.4, 0.2, 0.0]])  # mean 1, .7, .3, .1, 0
    b = result([[0.9, 0.9, 0.9, 0.5, 0.5], [0.9, 0.9, 0.5, 0.5, 0.1]])  # mean .9, .9, .7, .5, .3
    picture = rf.faithfulness_plot({"A": a, "B": b}, title="")
    colors = class_colors(2)
    width = lines.STEP_WIDTH  # five points: the line chart's spacing
    for k, v in enumerate([1.0, 0.7, 0.3, 0.1, 0.0]):
        assert np.array_equal(chart_pixel(picture, v, k, 0.0, 1.0, width), colors[0]), k
    for k, v in enumerate([0.9, 0.9, 0.7, 0.5, 0.3]):
        assert np.array_equal(chart_pixel(picture, v, k, 0.0, 1.0, width), colors[1]), k
    # the legend names each method with its mean AUC: trapezoids of the mean curve by hand
    auc_a = (1.0 + 0.7 + 0.7 + 0.3 + 0.3 + 0.1 + 0.1 + 0.0) / 2 * 0.25
    auc_b = (0.9 + 0.9 + 0.9 + 0.7 + 0.7 + 0.5 + 0.5 + 0.3) / 2 * 0.25
    mean_a, mean_b = [1.0, 0.7, 0.3, 0.1, 0.0], [0.9, 0.9, 0.7, 0.5, 0.3]
    labels = ["0.00", "0.25", "0.50", "0.75", "1.00"]
    expected = lines.line_chart(
        {f"A (AUC {auc_a:.3f})": mean_a, f"B (AUC {auc_b:.3f})": mean_b}, labels, "", lo=0.0, hi=1.0
    )
    assert np.array_equal(picture, expected)
    wrong = lines.line_chart(
        {"A (AUC 0.401)": mean_a, f"B (AUC {auc_b:.3f})": mean_b}, labels, "", lo=0.0, hi=1.0
    )
    assert not np.array_equal(picture, wrong)  # the legend's text is in the pixels


def test_default_title_says_which_way_is_better():
    curves = [[1.0, 0.5, 0.0]]
    plain = rf.faithfulness_plot({"A": result(curves)}, title="")
    for metric, settings, words in (
        ("deletion", {}, "deletion (lower AUC is better)"),
        ("insertion", {}, "insertion (higher AUC is better)"),
        ("road", {"order": "lerf"}, "road lerf (higher AUC is better)"),
        ("region_perturbation", {"order": "morf"}, "region perturbation morf (lower AUC is better)"),
    ):
        res = result(curves, metric=metric, **settings)
        titled = rf.faithfulness_plot({"A": res})
        assert np.array_equal(titled[-plain.shape[0] :], plain) and titled.shape[0] > plain.shape[0]
        text = f"{words}: the target's probability, mean over 1 image(s), against the share of pixels changed"
        assert np.array_equal(titled, rf.faithfulness_plot({"A": res}, title=text)), metric


def test_long_curves_are_drawn_through_every_kth_point():
    assert rf.shown_points(29).tolist() == list(range(29))
    assert rf.shown_points(50).tolist() == list(range(0, 49, 2)) + [49]  # stride ceil(49 / 39) = 2
    long = rf.shown_points(3137)  # a 224x224 image's 4x4 regions and the unperturbed point
    stride = long[1]
    assert stride == 81 and len(long) <= rf.MAX_POINTS and long[-1] == 3136
    assert np.all(np.diff(long[:-1]) == stride)
    assert rf.step_labels([0.0, 0.5, 1.0]) == ["0.00", "0.50", "1.00"]
    labels = rf.step_labels(np.linspace(0, 1, 29))
    assert [k for k, s in enumerate(labels) if s] == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28]
    # a 50-point curve is the plot of its thinned points, 23 px apart
    rng = np.random.default_rng(0)
    curves = np.sort(rng.uniform(size=(3, 50)), axis=1)[:, ::-1]
    res = result(curves)
    shown = rf.shown_points(50)
    picture = rf.faithfulness_plot({"A": res}, title="")
    width = rf.step_width(len(shown))
    assert width == 600 // 26
    for k, v in enumerate(curves.mean(axis=0)[shown]):
        assert np.array_equal(chart_pixel(picture, v, k, 0.0, 1.0, width), class_colors(1)[0]), k


def test_bad_input():
    a = result([[1.0, 0.5, 0.0]])
    with pytest.raises(MinicnnError, match="at least one method"):
        rf.faithfulness_plot({})
    with pytest.raises(MinicnnError, match="draws probabilities .* got output 'score'"):
        rf.faithfulness_plot({"A": a, "S": result([[3.0, 1.0, -2.0]], output="score")})
    with pytest.raises(MinicnnError, match="'B': its curves are not over the same images and fractions"):
        rf.faithfulness_plot({"A": a, "B": result([[1.0, 0.5, 0.0]], fractions=[0, 0.4, 1])})
    with pytest.raises(MinicnnError, match="'B': metric 'insertion', expected 'deletion'"):
        rf.faithfulness_plot({"A": a, "B": result([[1.0, 0.5, 0.0]], metric="insertion")})
    with pytest.raises(MinicnnError, match="step_width must be a positive number of pixels"):
        lines.line_chart({"a": [1.0]}, ["x"], "", step_width=0)


def test_line_chart_step_width_and_markers():
    """Steps ``step_width`` apart; a 4-pixel dot (no 6-pixel marker) where they are closer than
    MARKER_SPACING, so a lone value between gaps is still drawn."""
    values = [0.6, 0.6, 0.6, 0.6]
    color = class_colors(1)[0]
    y = int(round(10 + (1.0 - 0.6) / 1.2 * lines.PLOT_HEIGHT))
    for width, marked in ((20, True), (lines.MARKER_SPACING - 1, False)):
        picture = lines.line_chart({"a": values}, ["", "b", "", "d"], "", step_width=width)
        for k in range(4):
            assert np.array_equal(chart_pixel(picture, 0.6, k, step_width=width), color), (width, k)
        x = int(round(lines.MARGIN + width * 1.5))
        assert np.array_equal(picture[y - 4, x], color) == marked, width  # a 6-pixel marker's top
    lone = lines.line_chart({"a": [np.nan, 0.6, np.nan]}, ["x", "y", "z"], "", step_width=4)
    assert np.array_equal(chart_pixel(lone, 0.6, 1, step_width=4), color)
