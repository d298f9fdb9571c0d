"""The options the subcommands share (--weights, --image, --target, --layer, --device, --out, --seed,
--overwrite, --save-arrays) and the parsing of --unit. Values are checked later, against the loaded
network. --json and --no-progress are added to every command by minicnn.cli.main."""

from __future__ import annotations

import argparse
from pathlib import Path

from minicnn.errors import MinicnnError


def add_common(
    parser: argparse.ArgumentParser,
    *,
    weights: str = "default",
    image: bool = True,
    target: bool = True,
    layer: str | None = None,
) -> None:
    """Add the shared options. ``weights``: "default" (digit VGG) or "gap" (the CAM model);
    ``layer``: None (no --layer option), "" (optional, no default) or a default layer name."""
    from minicnn import paths

    default_weights = paths.GAP_MODEL if weights == "gap" else paths.DEFAULT_MODEL
    parser.add_argument(
        "--weights", type=Path, default=default_weights, metavar="FILE",
        help="model file: minicnn .h5, a Keras VGG16/VGG19 weights file or a Keras model "
        f"(default: {Path(default_weights).name}, shipped)",
    )  # fmt: skip
    if image:
        parser.add_argument(
            "--image", type=Path, default=None, metavar="PATH",
            help="an image file or a folder of images (default: shipped held-out digits)",
        )  # fmt: skip
    if target:
        parser.add_argument(
            "--target", default="predicted", metavar="CLASS",
            help="class index, class name, 'predicted' (default) or 'label' (the true class of the "
            "shipped samples); the index used is printed",
        )  # fmt: skip
    if layer is not None:
        parser.add_argument(
            "--layer", default=layer or None, metavar="NAME",
            help="layer name, see 'minicnn info'" + (f" (default: {layer})" if layer else ""),
        )  # fmt: skip
    add_run_options(parser, "<command>")
    parser.add_argument(
        "--save-arrays", action="store_true",
        help="also write one .npz per image: the arrays and their metadata (model, target, method)",
    )  # fmt: skip


def add_run_options(parser, command: str) -> None:
    """--device, --out (default ./minicnn-out/<command>) and --seed: every command has them."""
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="default: cpu")
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR",
        help=f"output folder (default: ./minicnn-out/{command})",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace files of an earlier run (default: a taken name gets a counter, name-2.png)",
    )  # fmt: skip


def parse_unit(text):
    """--unit text -> the ``unit`` of ``mc.reconstruct`` / ``mc.maximize``:
    'strongest' (or empty, 'none') -> None; 'c' -> c; 'c,y,x' -> (c, y, x)."""
    if text is None or str(text).strip().lower() in ("", "strongest", "none"):
        return None
    try:
        parts = [int(p) for p in str(text).split(",")]
    except ValueError:
        raise MinicnnError(f"--unit {text!r}: expected 'strongest', a channel index c, or c,y,x") from None
    return parts[0] if len(parts) == 1 else tuple(parts)
