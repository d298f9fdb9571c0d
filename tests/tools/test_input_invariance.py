"""Input invariance (Kindermans et al. 2017): the shifted network computes the same scores (float64,
1e-12) with the padding made part of the input, and each method's verdict is the paper's."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.tools.input_invariance import (
    input_invariance,
    naive_shifted_network,
    pad_input,
    shifted_networks,
)
from minicnn.tools.saliency import class_gradient


@pytest.fixture(scope="module")
def digits(digit_net, make_digit_images):
    return make_digit_images(digit_net, n=3, seed=7)


def _float64(net):
    import copy

    return copy.deepcopy(net).astype(np.float64)


@pytest.mark.parametrize("shift", [-1.0, 0.37])
def test_shifted_network_scores_equal_the_original(digit_net, digits, shift):
    reference = np.asarray(_float64(digit_net).forward(digits.astype(np.float64)))
    explicit, shifted, pad = shifted_networks(digit_net, shift)
    assert pad == 1
    x1 = pad_input(digits, pad)
    scale = np.abs(reference).max()
    assert np.abs(np.asarray(explicit.forward(x1)) - reference).max() <= 1e-12 * scale
    assert np.abs(np.asarray(shifted.forward(x1 + shift)) - reference).max() <= 1e-12 * scale
    # the same bias compensation with the padding left in the convolution is wrong at the border
    naive = naive_shifted_network(digit_net, shift)
    assert (
        np.abs(np.asarray(naive.forward(digits.astype(np.float64) + shift)) - reference).max() > 1e-3 * scale
    )


def test_per_channel_shift_on_three_channels(make_small_vgg):
    net = make_small_vgg(seed=4, channels=3, size=8, classes=3)
    for layer in net.layers:
        if layer.has_params:
            layer.bias = np.random.default_rng(1).uniform(-0.3, 0.3, layer.bias.shape).astype(net.dtype)
    x = np.random.default_rng(2).random((2, 3, 8, 8)).astype(np.float32)
    m = np.array([-0.5, 0.25, 2.0])
    reference = np.asarray(_float64(net).forward(x.astype(np.float64)))
    _, shifted, pad = shifted_networks(net, m)
    got = np.asarray(shifted.forward(pad_input(x, pad) + m[None, :, None, None]))
    assert np.abs(got - reference).max() <= 1e-12 * np.abs(reference).max()


def test_explicit_padding_gives_the_original_maps(digit_net, digits):
    net64 = _float64(digit_net)
    for layer in net64.layers:  # the tool's lowering (see "Ties"): the same rounding everywhere
        if layer.is_convolution:
            layer.algorithm = "im2col"
    x = digits.astype(np.float64)
    y = np.asarray(net64.forward(x)).argmax(axis=1)
    explicit, _, pad = shifted_networks(digit_net, -1.0)
    got = np.asarray(class_gradient(explicit, pad_input(x, pad), y))[..., pad:-pad, pad:-pad]
    want = np.asarray(class_gradient(net64, x, y))
    assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()


# Kindermans et al. 2017: True = input invariant. Gradient-type methods that never read the input's
# value are; those that multiply by the input or integrate from a fixed zero reference are not,
# until the reference moves with the input (sec. 3.2)
PAPER = {
    "gradient": True,
    "smoothgrad": True,
    "guided": True,
    "deconvnet": True,
    "grad_cam": True,
    "gradient_x_input": False,
    "integrated-gradients": False,
    "integrated-gradients (baseline shifted)": True,
}


def test_verdicts_are_the_papers(digit_net, digits):
    methods = ["gradient", "smoothgrad", "guided", "deconvnet", "grad_cam", "gradient_x_input", "ig"]
    result = input_invariance(digit_net, digits, methods, shift=-1.0)
    assert result.output_difference <= 1e-12 * 20
    assert result.moved_switches == {"block1_pool": 0, "block2_pool": 0}
    assert result.verdicts() == PAPER
    for row in result.rows:  # far from the tolerance either way
        assert row.difference < 1e-12 if row.invariant else row.difference > 0.05


def test_deconvnet_is_invariant_where_no_switch_is_tied(make_small_vgg):
    """The DeconvNet reads only the switches: invariant when no max-pool window holds equal values
    (random images, random biases); on the digits its switches move at exact ties (next test)."""
    net = make_small_vgg(seed=5, channels=1, size=16, classes=4)
    for layer in net.layers:
        if layer.has_params:
            layer.bias = np.random.default_rng(6).uniform(-0.3, 0.3, layer.bias.shape).astype(net.dtype)
    x = np.random.default_rng(7).random((3, 1, 16, 16)).astype(np.float32)
    result = input_invariance(net, x, ["deconvnet", "gradient_x_input"], shift=-1.0)
    assert set(result.moved_switches.values()) == {0}
    assert result.verdicts() == {"deconvnet": True, "gradient_x_input": False}


@pytest.mark.parametrize("method, module", [("deeplift", "deeplift"), ("lrp-zplus", "lrp")])
def test_verdicts_of_the_propagation_rules(digit_net, digits, method, module):
    """DeepLIFT against the zero reference and LRP read the input's value: not invariant; DeepLIFT
    becomes invariant with its reference shifted (Kindermans et al. 2017, sec. 3)."""
    if importlib.util.find_spec(f"minicnn.tools.{module}") is None:
        pytest.skip(f"minicnn.tools.{module} is not in this copy yet")
    result = input_invariance(digit_net, digits, [method], shift=-1.0)
    expected = {method: False}
    if method == "deeplift":
        expected["deeplift (baseline shifted)"] = True
    assert result.verdicts() == expected


def test_winograd_would_break_ties(digit_net, digits, monkeypatch):
    """Why the tool lowers by im2col: with Winograd's tiles the black background's max-pool windows
    of equal values get different last bits, their switches move (each window an exact tie under
    im2col, checked one by one) and the maps change."""
    from minicnn.tools import input_invariance as tool

    monkeypatch.setattr(tool, "EXACT_LOWERING", "winograd4")  # F(4x4, 3x3) wherever it fits
    result = input_invariance(digit_net, digits, ["deconvnet", "gradient"], shift=-1.0)
    assert result.moved_switches["block1_pool"] > 0
    assert result.verdicts()["deconvnet"] is False  # (the gradient moves too, through the same switches)
    explicit, shifted, pad = shifted_networks(digit_net, -1.0)
    x1 = pad_input(digits, pad)
    r1, r2 = explicit.run(x1), shifted.run(x1 - 1.0)
    moved = np.argwhere(
        np.asarray(r1.cache("block1_pool").switches) != np.asarray(r2.cache("block1_pool").switches)
    )
    assert len(moved) == result.moved_switches["block1_pool"]
    monkeypatch.undo()  # im2col: the values those windows hold without Winograd's rounding
    before = np.asarray(shifted_networks(digit_net, -1.0)[0].run(x1).output("block1_conv2_relu"))
    for n, c, i, j in moved:
        window = before[n, c, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
        assert (window == window.max()).sum() >= 2  # an exact tie: the last bit chose the switch


def test_bad_input_is_one_line(make_small_vgg):
    dense_first = mc.Sequential([mc.Flatten(), mc.Dense(16, 3)], seed=0, meta={"input_shape": [1, 4, 4]})
    x = np.zeros((1, 1, 4, 4), np.float32)
    conv = make_small_vgg(seed=0, channels=3, size=8, classes=3)
    cases = [
        (lambda: input_invariance(dense_first, x, ["gradient"]), "expected a convolution first"),
        (lambda: shifted_networks(conv, [1.0, 2.0]), "shift must be a finite number or 3 numbers"),
        (lambda: shifted_networks(conv, float("nan")), "shift must be a finite number"),
        (lambda: input_invariance(conv, np.zeros((1, 3, 8, 8), np.float32), ["nope"]), "unknown method"),
    ]
    for call, words in cases:
        with pytest.raises(MinicnnError) as err:
            call()
        assert words in str(err.value) and "\n" not in str(err.value)
