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


# -- every command's options, walked from the parser itself -------------------------------------------
def subcommands() -> dict:
    """name -> the subcommand's argparse parser, as 'minicnn' builds them."""
    import argparse

    from minicnn.cli.main import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def options_of(parser) -> list:
    return [a for a in parser._actions if a.option_strings or a.dest in ("file", "model")]


def test_every_numeric_option_is_checked_by_the_parser():
    """No option of any command takes a bare int or float (which accepts 0, -5, nan, inf and is
    then found wrong, if at all, after the model has loaded): only --seed takes any int."""
    raw = [
        f"{name} {a.option_strings[0]}"
        for name, parser in subcommands().items()
        for a in options_of(parser)
        if a.type in (int, float) and a.dest != "seed"
    ]
    assert not raw, f"use a type from minicnn.cli.options: {raw}"


def bad_value(action, tmp_path) -> str | None:
    """A value the action's type or choices must refuse, or None when it takes any text."""
    from minicnn.cli import cmd_bench, options

    bad = {
        options.positive_int: "0", options.nonnegative_int: "-1", options.positive_float: "0",
        options.nonnegative_float: "-1", options.occluder_fill: "blue", cmd_bench.bench_size: "16",
        options.existing_file: str(tmp_path / "absent.npy"), options.image_path: str(tmp_path / "absent.png"),
    }  # fmt: skip
    if action.type in bad:
        return bad[action.type]
    if action.choices is not None and action.nargs in (None, "?"):
        return "no-such-choice"
    return None


def test_bad_option_values_are_refused_before_the_model_is_read(tmp_path, capsys):
    """For every command and every checked option: a bad value with a model path that does not
    exist gives the option's error (one line, exit 2), not the model's. The options are checked by
    argparse types, which run before any command does."""
    from minicnn.cli.main import main

    missing = tmp_path / "missing-model.h5"
    tried = 0
    for name, parser in subcommands().items():
        model = [str(missing)] if name == "info" else ["--weights", str(missing)]
        if name == "train":
            model = ["mnist-vgg", "--out", str(tmp_path / "t.h5")]
        for action in options_of(parser):
            value = bad_value(action, tmp_path)
            if value is None or not action.option_strings:
                continue
            option = action.option_strings[-1]
            with pytest.raises(SystemExit) as stop:
                main([name, *model, option, value])
            err = capsys.readouterr().err
            assert stop.value.code == 2, (name, option)
            assert len(err.splitlines()) == 1 and err.startswith(f"minicnn {name}: error: argument "), err
            assert option in err and "missing-model" not in err, (name, option, err)
            tried += 1
    assert tried >= 60, tried  # the walk really reaches every command's options


def test_every_model_option_names_every_format_read():
    """The help of every option that takes a model file (and info's FILE) names each format minicnn
    reads (they said '.h5' only), as 'minicnn COMMAND --help' prints it."""
    import re

    formats = ("minicnn .h5", "Keras .h5", "PyTorch .pth", ".safetensors", "ONNX .onnx")
    seen = 0
    for name, parser in subcommands().items():
        text = " ".join(parser.format_help().split())
        for action in options_of(parser):
            if action.dest in ("weights", "file") or action.dest.endswith("_weights"):
                seen += 1
                entry = " ".join((action.help or "").split())
                assert all(f in entry for f in formats), (name, action.dest, entry)
                assert all(f in text for f in formats), (name, action.dest)
        if name not in ("train",):
            assert not re.search(r"expected a (minicnn or Keras )?\.h5", text), name
    assert seen >= len(subcommands()) - 1  # every command but train reads a model


def test_every_command_that_reads_images_takes_preprocess():
    from minicnn.io.preprocess import CONVENTIONS

    reading = {name: parser for name, parser in subcommands().items() if any(
        "--image" in a.option_strings for a in parser._actions)}  # fmt: skip
    assert len(reading) >= 12, sorted(reading)
    for name, parser in reading.items():
        (action,) = [a for a in parser._actions if "--preprocess" in a.option_strings]
        assert tuple(action.choices) == CONVENTIONS and action.default is None, name


def test_train_recipes_are_the_trainers():
    from minicnn.cli.cmd_train import RECIPES
    from minicnn.train.models import MODELS

    assert RECIPES == tuple(MODELS)


def test_every_image_option_names_the_files_read_and_every_convention():
    """--image help names each image suffix a folder is read for; --preprocess help describes each
    convention (from io/preprocess.CONVENTION_NOTES, one entry per convention)."""
    from minicnn.io.image_folder import IMAGE_SUFFIXES
    from minicnn.io.preprocess import CONVENTION_NOTES, CONVENTIONS

    assert tuple(CONVENTION_NOTES) == CONVENTIONS
    for name, parser in subcommands().items():
        for action in parser._actions:
            entry = " ".join((action.help or "").split())
            if action.dest == "image":
                assert all(s in entry for s in IMAGE_SUFFIXES), (name, entry)
            if "--preprocess" in action.option_strings:
                assert all(f"{c} ({CONVENTION_NOTES[c]})" in entry for c in CONVENTIONS), (name, entry)
