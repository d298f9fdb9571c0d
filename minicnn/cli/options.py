"""The options the subcommands share (--weights, --image, --target, --layer, --device, --out, --seed,
--overwrite, --save-arrays), the parsing of --unit, and the value types every command's options use.

Rule: an option's value is checked by the parser, before any model is read, whenever the value alone
can be judged (a count must be positive, a file named by an option must exist, a name must be one of
a list): a typo then costs no model load and its error is not hidden behind a model's. Only what
needs the network (a layer name, a class name, a unit inside a layer) is checked after loading.
The types raise argparse.ArgumentTypeError; minicnn.cli.main prints it as one line, exit code 2.
--json and --no-progress are added to every command by minicnn.cli.main."""

from __future__ import annotations

import argparse
from pathlib import Path

from minicnn.errors import MinicnnError


# -- value types: argparse calls them on the text of an option, before any command runs -------------
def _number(text: str, kind, what: str, ok) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and value != value:  # NaN compares false with everything: say so, not "ok"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
    return value


def positive_int(text: str) -> int:
    """An int >= 1 (counts, sizes, steps)."""
    return _number(text, int, "a positive integer", lambda v: v >= 1)


def nonnegative_int(text: str) -> int:
    """An int >= 0 (indices, counts where 0 means none)."""
    return _number(text, int, "an integer >= 0", lambda v: v >= 0)


def positive_float(text: str) -> float:
    """A finite float > 0 (step sizes, tolerances)."""
    return _number(text, float, "a positive number", lambda v: 0 < v < float("inf"))


def nonnegative_float(text: str) -> float:
    """A finite float >= 0 (penalty weights)."""
    return _number(text, float, "a number >= 0", lambda v: 0 <= v < float("inf"))


def existing_file(text: str) -> Path:
    """A path that names an existing file (an input other than the model: the model's own errors
    come from loading it, after every option was checked)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


FILLS = ("zero", "grey", "mean")  # occluder values by name (minicnn.tools.occlusion.fill_values)


def occluder_fill(text: str) -> str | float:
    """--fill: one of FILLS, or a finite number (the occluder's value in network-input units)."""
    if text in FILLS:
        return text
    return _number(text, float, f"{', '.join(FILLS)} or a number", lambda v: abs(v) < float("inf"))


def image_path(text: str) -> Path:
    """An existing image file or folder of images (what --image names), else the short name of a
    shipped sample (minicnn.paths.SHIPPED: digits, clutter, photos, ...; an existing path wins)."""
    from minicnn import paths

    path = Path(text)
    if not path.exists():
        if text in paths.short_names("images"):
            return paths.shipped(text)
        raise argparse.ArgumentTypeError(
            f"{text}: not found (expected an image file, a folder of images, or a shipped sample: "
            f"{', '.join(paths.short_names('images'))})"
        )
    return path


def model_path(text: str) -> Path:
    """--weights: a model file, or the short name of a shipped model (minicnn.paths.SHIPPED:
    mnist_vgg, mnist_gap, ...; an existing path wins). Resolved here, once, so that every command
    (and the workers of a dataset job, which open the same path) sees the file itself; a missing
    file stays a path, for the loader's message that names every format."""
    from minicnn import paths

    path = Path(text)
    if not path.exists() and text in paths.short_names("model"):
        return paths.shipped(text)
    return path


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
    from minicnn.io.formats import image_files, model_files

    default_weights = paths.GAP_MODEL if weights == "gap" else paths.DEFAULT_MODEL
    parser.add_argument(
        "--weights", type=model_path, default=default_weights, metavar="FILE",
        help=f"model file: {model_files()}; the format is detected from the contents "
        f"(default: {Path(default_weights).name}, shipped)",
    )  # fmt: skip
    if image:
        parser.add_argument(
            "--image", type=image_path, default=None, metavar="PATH",
            help=f"an image file or a folder of images ({image_files()}; default: shipped held-out digits)",
        )  # fmt: skip
        add_preprocess(parser)
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


def add_preprocess(parser) -> None:
    """--preprocess: how images become network input, when the model file does not say (or says
    wrong). Every command that reads images has it; the one used is printed (context.preprocessing)."""
    from minicnn.io.preprocess import CONVENTION_NOTES, CONVENTIONS

    notes = ", ".join(f"{c} ({CONVENTION_NOTES[c]})" for c in CONVENTIONS)
    parser.add_argument(
        "--preprocess", choices=CONVENTIONS, default=None,
        help=f"pixel convention of the model: {notes}; default: the one the model file names, else "
        "none (the choice is printed)",
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
