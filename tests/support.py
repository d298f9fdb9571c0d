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


def assert_close(actual, expected, rtol=1e-4, what=""):
    """|actual - expected| <= rtol * max|expected|, the tolerance every issue names."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = float(np.abs(expected).max())
    err = float(np.abs(actual - expected).max())
    assert scale > 0, f"{what}: the reference is all zeros, the comparison would prove nothing"
    assert err <= rtol * scale, f"{what}: max error {err:.3g} > {rtol} * {scale:.3g}"


def biased(net, seed=0):
    """``net`` in float64 with random biases in [-0.3, 0.3], so that no ReLU sits exactly at its kink
    at the zero image (finite-difference and autograd comparisons need differentiable points)."""
    net.astype(np.float64)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if layer.has_params:
            layer.bias = rng.uniform(-0.3, 0.3, layer.bias.shape)
    return net
