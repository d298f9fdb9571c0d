"""Shared test helpers: the external oracles and the one comparison rule used everywhere."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def oracle(module: str):
    """Import an external reference (torch, captum, keras): skip on a user's machine, fail in CI."""
    if IN_CI:
        return importlib.import_module(module)
    return pytest.importorskip(module)


def assert_close(actual, expected, rtol=1e-4, what="", *, atol=0.0, elementwise=False, scale=None):
    """Assert that ``actual`` matches the reference ``expected`` (arrays or scalars, compared in float64).

    The rule every issue names: max|actual - expected| <= atol + rtol * scale, where scale is
    max|expected| unless the caller passes the magnitude the error should be measured against
    (e.g. the sum of |terms| of an inner product, whose rounding grows with it).
    ``elementwise=True`` uses NumPy's stricter per-element rule instead,
    |actual - expected| <= atol + rtol * |expected| at every element (numpy.testing.assert_allclose),
    for references whose entries differ by orders of magnitude (finite differences, worked examples).
    A 0-d ``expected`` is a constant every element must match. An all-zero reference is refused:
    anything small would pass against it, so the comparison would prove nothing. A caller who passes
    ``scale`` has named the magnitude itself (it must be > 0), and an exact zero may then be the right
    answer (an inner-product identity whose every term reads padding).
    """
    assert not (elementwise and scale is not None), "elementwise compares each element to its own size"
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if expected.ndim == 0:
        expected = np.broadcast_to(expected, actual.shape)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    largest = float(np.abs(expected).max())
    if scale is None:
        assert largest > 0, f"{what}: the reference is all zeros, the comparison would prove nothing"
    else:
        assert scale > 0, f"{what}: scale {scale} must be positive"
    error = np.abs(actual - expected)
    if elementwise:
        bound = atol + rtol * np.abs(expected)
        bad = ~(error <= bound)  # NaN fails too
        if bad.any():
            k = np.unravel_index(int(np.argmax(np.where(bad, error - bound, -np.inf))), error.shape)
            raise AssertionError(
                f"{what}: {int(bad.sum())} of {bad.size} elements off; worst at {k}: {actual[k]:.6g} vs "
                f"{expected[k]:.6g} (error {error[k]:.3g} > {atol} + {rtol} * |reference|)"
            )
        return
    scale = largest if scale is None else float(scale)
    err = float(error.max())
    assert err <= atol + rtol * scale, f"{what}: max error {err:.3g} > {atol} + {rtol} * {scale:.3g}"


def biased(net, seed=0):
    """``net`` in float64 with random biases in [-0.3, 0.3], so that no ReLU sits exactly at its kink
    at the zero image (finite-difference and autograd comparisons need differentiable points)."""
    net.astype(np.float64)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if layer.has_params:
            layer.bias = rng.uniform(-0.3, 0.3, layer.bias.shape)
    return net


def chart_pixel(picture, value, step, lo=-0.2, hi=1.0, step_width=None):
    """The pixel at the centre of the marker of ``value`` at ``step`` in an untitled
    ``render.lines.line_chart`` picture, from the chart's stated geometry (10 px above the plotting
    area, PLOT_HEIGHT tall; steps step_width apart after MARGIN)."""
    from minicnn.render import lines

    width = lines.STEP_WIDTH if step_width is None else step_width
    y = 10 + (hi - value) / (hi - lo) * lines.PLOT_HEIGHT
    return picture[int(round(y)), int(round(lines.MARGIN + width * (step + 0.5)))]
