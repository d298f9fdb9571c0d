"""Layers describe their own geometry: output shapes, input windows and parameter shapes.

Independent references: torch's own layers (output shapes and parameter shapes of nn.Conv2d,
nn.MaxPool2d, nn.Linear) and brute force (which input pixels change an output, found by perturbing
each input pixel and looking at what moves).
"""

import numpy as np
import pytest
from support import oracle

import minicnn as mc
from minicnn.geometry import POINTWISE, Window, output_size
from minicnn.tools.topk import receptive_field


@pytest.mark.parametrize(
    "size,kernel,stride,padding", [(7, 3, 1, 1), (8, 3, 2, 0), (9, 5, 2, 2), (5, 1, 3, 0), (4, 4, 4, 0)]
)
def test_output_size_matches_torch(size, kernel, stride, padding):
    torch = oracle("torch")
    conv = torch.nn.Conv2d(1, 1, kernel, stride=stride, padding=padding)
    out = conv(torch.zeros(1, 1, size, size)).shape[-1]
    assert output_size(size, kernel, stride, padding) == out
    layer = mc.Conv2D(1, 1, kernel, stride=stride, padding=padding)
    assert layer.output_shape((1, size, size)) == (1, out, out)


def test_param_shapes_match_torch_and_the_parameters():
    torch = oracle("torch")
    conv, dense = mc.Conv2D(3, 5, (2, 4)), mc.Dense(7, 2)
    mc.Sequential([conv], seed=0), mc.Sequential([dense], seed=0)
    t_conv, t_dense = torch.nn.Conv2d(3, 5, (2, 4)), torch.nn.Linear(7, 2)
    assert conv.param_shapes() == {"weight": tuple(t_conv.weight.shape), "bias": tuple(t_conv.bias.shape)}
    assert dense.param_shapes() == {"weight": tuple(t_dense.weight.shape), "bias": tuple(t_dense.bias.shape)}
    for layer in (conv, dense):
        assert {k: v.shape for k, v in layer.params.items()} == layer.param_shapes()
    for layer in (mc.ReLU(), mc.MaxPool2D(2), mc.Flatten(), mc.GlobalAvgPool2D(), mc.Dropout(), mc.Softmax()):
        assert layer.param_shapes() == {}


def _brute_force_window(layer, shape, out_pos):
    """The input pixels (y, x) whose change moves output ``out_pos`` (channel 0), found by trying each."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, *shape))
    base = layer.forward(x)[0][0, 0][out_pos]
    hit = set()
    for y in range(shape[1]):
        for xx in range(shape[2]):
            moved = x.copy()
            moved[0, :, y, xx] += 10.0 + rng.random()
            if layer.forward(moved)[0][0, 0][out_pos] != base:
                hit.add((y, xx))
    return hit


@pytest.mark.parametrize(
    "layer",
    [mc.Conv2D(2, 1, 3, padding=1), mc.Conv2D(2, 1, (3, 2), stride=2), mc.MaxPool2D(3, stride=2),
     mc.MaxPool2D(2, stride=3), mc.ReLU()],
    ids=["conv3p1", "conv3x2s2", "pool3s2", "pool2s3", "relu"],
)  # fmt: skip
def test_window_is_what_the_forward_pass_reads(layer):
    mc.Sequential([layer], seed=1, dtype=np.float64)
    shape = (2, 9, 9)
    window = layer.window()
    out_h, out_w = (layer.output_shape(shape) if layer.params or window != POINTWISE else shape)[1:]
    for out_pos in [(0, 0), (out_h - 1, out_w - 1), (out_h // 2, 1)]:
        (r0, r1), (c0, c1) = (window.input_span(a, out_pos[a], 1) for a in (0, 1))
        claimed = {(y, x) for y in range(max(r0, 0), min(r1, 9)) for x in range(max(c0, 0), min(c1, 9))}
        found = _brute_force_window(layer, shape, out_pos)
        if layer.is_pooling or layer.is_rectifier:
            assert found <= claimed and found  # max/ReLU: only one pixel of the window moves it
        else:
            assert found == claimed


def test_layers_mixing_all_positions_have_no_window():
    for layer in (mc.Flatten(), mc.Dense(3, 2), mc.GlobalAvgPool2D(), mc.Softmax()):
        assert layer.window() is None
    for layer in (mc.ReLU(), mc.Dropout()):
        assert layer.window() == Window((1, 1), (1, 1), (0, 0))


def test_output_span_inverts_input_span():
    """Every output whose input span meets [start, start + length) is reported, and no other."""
    for window in (
        Window((3, 3), (1, 1), (1, 1)),
        Window((2, 2), (3, 3), (0, 0)),
        Window((5, 5), (2, 2), (2, 2)),
    ):
        size_in = 13
        size_out = output_size(size_in, window.kernel[0], window.stride[0], window.padding[0])
        for start in range(size_in):
            for length in (1, 3):
                expect = [
                    o for o in range(size_out)
                    if (lambda s: s[0] < start + length and start < s[1])(window.input_span(0, o, 1))
                ]  # fmt: skip
                lo, hi = window.output_span(0, start, length, size_out)
                assert list(range(int(lo), int(hi) + 1)) == expect, (window, start, length)


def test_receptive_field_by_brute_force():
    """The receptive field topk computes from the layers' windows equals what actually moves a unit."""
    net = mc.Sequential(
        [mc.Conv2D(1, 2, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2), mc.Conv2D(2, 1, 3, stride=2)],
        seed=3,
        dtype=np.float64,
    )
    (rh, rw), (jh, jw), (oh, ow) = receptive_field(net, "conv2d_1")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 1, 20, 20))
    pos = (2, 3)
    base = net.forward(x)[0, 0][pos]
    rows = set()
    for y in range(20):
        moved = x.copy()
        moved[0, 0, y, :] += 5.0
        if net.forward(moved)[0, 0][pos] != base:
            rows.add(y)
    top = oh + pos[0] * jh
    assert rows and rows <= set(range(top, top + rh))  # max-pool may ignore some rows of the field
    assert min(rows) <= top + 1 and max(rows) >= top + rh - 2
    assert receptive_field(net.__class__([*net.layers, mc.Flatten()]), "flatten_0") is None
