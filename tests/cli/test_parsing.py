"""The shared option parsing, in-process: targets by index or name, units, layers."""

from __future__ import annotations

import pytest

import minicnn as mc
from minicnn.cli.classes import parse_target
from minicnn.cli.layer_choice import check_layer, feature_layer
from minicnn.cli.options import parse_unit
from minicnn.errors import MinicnnError
from minicnn.tools.targets import resolve_targets


@pytest.fixture(scope="module")
def net():
    names = ["tench", "great white shark", "tabby", "tiger cat"]
    return mc.Sequential(
        [mc.Conv2D(3, 4, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2), mc.Flatten(), mc.Dense(4 * 4 * 4, 4)],
        seed=0,
        meta={"input_shape": [3, 8, 8], "class_names": names},
    )


@pytest.mark.parametrize(
    "text, expected",
    [("predicted", "predicted"), ("Predicted", "predicted"), ("2", 2), ("tabby", 2),
     ("Great_White_Shark", 1), ("great white shark", 1), ("3", 3)],
)  # fmt: skip
def test_parse_target(net, text, expected):
    assert parse_target(net, text) == expected


@pytest.mark.parametrize("text, match", [("4", "0..3"), ("-1", "0..3"), ("dog", "tench, great white shark")])
def test_parse_target_errors_say_what_is_valid(net, text, match):
    with pytest.raises(MinicnnError, match=match):
        parse_target(net, text)


def test_resolve_targets():
    import numpy as np

    scores = np.array([[0.0, 2.0, 1.0], [3.0, 0.0, 1.0]])
    # the CLI uses the library's resolve_targets, which returns an int64 array
    assert resolve_targets("predicted", scores).tolist() == [1, 0]
    assert resolve_targets(2, scores).tolist() == [2, 2]


def test_parse_unit():
    assert parse_unit("strongest") is None
    assert parse_unit("5") == 5
    assert parse_unit("1,2,3") == (1, 2, 3)
    with pytest.raises(MinicnnError, match="c,y,x"):
        parse_unit("a")


def test_check_layer_and_defaults(net):
    assert feature_layer(net) == "relu_0"
    assert check_layer(net, "conv2d_0") == "conv2d_0"
    with pytest.raises(MinicnnError, match="conv2d_0, relu_0, maxpool2d_0, flatten_0, dense_0"):
        check_layer(net, "conv9")
