"""Options and plumbing shared by the subcommands: weights, images, targets, layers, device, output.

Every function here turns a user's mistake into a one-line MinicnnError that says what was expected
(main.py prints it and exits 2), and validates everything before the first file is written, so a
failed command leaves no output behind.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minicnn.cli.inputs import (  # noqa: F401  (re-exported for the commands)
    DEFAULT_SAMPLES,
    Inputs,
    display_images,
    display_signal,
    image_files,
    load_inputs,
    shipped_clutter,
    shipped_samples,
    to_device_array,
)
from minicnn.errors import MinicnnError

TOP5_SHOWN = 10  # images whose top-5 predictions are printed


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
            help="class index, class name, or 'predicted' (default)",
        )  # fmt: skip
    if layer is not None:
        parser.add_argument(
            "--layer", default=layer or None, metavar="NAME",
            help="layer name, see 'minicnn info'" + (f" (default: {layer})" if layer else ""),
        )  # fmt: skip
    add_run_options(parser, "<command>")
    parser.add_argument("--save-arrays", action="store_true", help="also write the raw arrays as .npy")


# -- network -----------------------------------------------------------------------------------
def load_network(path, device: str = "cpu"):
    """Load a model file with ``mc.load``; any failure becomes one MinicnnError naming the file."""
    import minicnn as mc

    path = Path(path)
    if not path.is_file():
        raise MinicnnError(f"weights file {path} not found (expected a .h5 model file)")
    try:
        net = mc.load(path)
    except MinicnnError:
        raise
    except Exception as exc:  # h5py/numpy errors from a broken file: never a traceback
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MinicnnError(f"{path}: could not load the model ({first})") from None
    return to_device(net, device)


def to_device(net, device: str):
    """Move ``net`` to ``device``; a missing GPU becomes a one-line MinicnnError."""
    if device == "cpu":
        return net
    try:
        net.to(device)
    except MinicnnError:
        raise
    except Exception as exc:  # RuntimeError from minicnn.backend, CUDA errors
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MinicnnError(f"--device {device}: {first}") from None
    return net


def class_names(net) -> list[str]:
    """The network's class names from its metadata, or "0", "1", ... when it has none."""
    names = net.meta.get("class_names")
    if names:
        return [str(n) for n in names]
    return [str(i) for i in range(net.shapes()[-1][-1])] if net.input_shape else []


def num_classes(net) -> int:
    if net.input_shape:
        return int(np.prod(net.shapes()[-1]))
    return len(class_names(net))


def check_layer(net, name: str | None, kinds=None) -> str:
    """Validate a layer name (and, with ``kinds``, its kind); the error lists the valid ones."""
    valid = [layer.name for layer in net.layers if kinds is None or layer.kind in kinds]
    if name is None:
        raise MinicnnError(f"--layer is required; expected one of: {', '.join(valid)}")
    if name not in valid:
        what = "layer" if kinds is None else "/".join(kinds) + " layer"
        raise MinicnnError(f"unknown {what} {name!r}; expected one of: {', '.join(valid)}")
    return name


def last_layer(net, kinds) -> str:
    """The name of the last layer whose kind is in ``kinds`` (e.g. the last Conv2D)."""
    for layer in reversed(net.layers):
        if layer.kind in kinds:
            return layer.name
    raise MinicnnError(f"the network has no {'/'.join(kinds)} layer")


# -- targets -----------------------------------------------------------------------------------
def parse_target(net, text) -> int | str:
    """'predicted', an index or a class name -> 'predicted' or a class index (validated)."""
    names = class_names(net)
    k = num_classes(net)
    text = str(text).strip()
    if text.lower() == "predicted":
        return "predicted"
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < k:
            raise MinicnnError(f"target {index} out of range: expected a class index 0..{k - 1}")
        return index
    key = text.lower().replace("_", " ")
    matches = [i for i, n in enumerate(names) if n.lower().replace("_", " ") == key]
    if not matches:  # ImageNet names are lists like "tabby, tabby cat": match any alternative
        matches = [i for i, n in enumerate(names) if key in (p.strip().lower() for p in n.split(","))]
    if not matches:
        shown = ", ".join(names[:20]) + (f", ... ({len(names)} classes)" if len(names) > 20 else "")
        raise MinicnnError(
            f"unknown target {text!r}: expected 'predicted', an index 0..{k - 1} or a class name ({shown})"
        )
    return matches[0]


def resolve_targets(target, scores) -> list[int]:
    """One class index per image: the argmax of ``scores`` (N, K), or ``target``."""
    scores = np.asarray(scores)
    if target == "predicted":
        return [int(i) for i in scores.argmax(axis=1)]
    return [int(target)] * scores.shape[0]


def probabilities(scores) -> np.ndarray:
    """Softmax of (N, K) scores, in float64 (for printing)."""
    s = np.asarray(scores, dtype=np.float64)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def print_top5(net, scores, names, file=None) -> None:
    """Print the five most probable classes of each image (probability from the softmax)."""
    file = file or sys.stdout
    labels = class_names(net)
    probs = probabilities(scores)
    for name, p in list(zip(names, probs, strict=True))[:TOP5_SHOWN]:
        top = np.argsort(-p)[:5]
        text = ", ".join(f"{labels[i]} {p[i]:.3f}" for i in top)
        print(f"  {name}: top-5 {text}", file=file)
    if len(names) > TOP5_SHOWN:
        print(f"  ... and {len(names) - TOP5_SHOWN} more images", file=file)


# -- output ------------------------------------------------------------------------------------
@dataclass
class Output:
    """The output folder of one command; created on the first write, so errors leave nothing."""

    folder: Path
    save_arrays: bool = False
    quiet: bool = False

    def __post_init__(self):
        self.written: list[Path] = []

    def _path(self, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / name

    def png(self, name: str, image) -> Path:
        from minicnn.render.save import save_png

        path = save_png(image, self._path(name))
        self.written.append(path)
        if not self.quiet:
            print(f"  wrote {path}")
        return path

    def text(self, name: str, text: str) -> Path:
        from minicnn.io.atomic import atomic_path

        path = self._path(name)
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        self.written.append(path)
        if not self.quiet:
            print(f"  wrote {path}")
        return path

    def npy(self, name: str, array) -> Path | None:
        """Write ``array`` only with --save-arrays."""
        if not self.save_arrays:
            return None
        from minicnn.backend import to_numpy
        from minicnn.render.save import save_npy

        path = save_npy(to_numpy(array), self._path(name))
        self.written.append(path)
        if not self.quiet:
            print(f"  wrote {path}")
        return path


def output(args, command: str) -> Output:
    folder = args.out if args.out is not None else Path("minicnn-out") / command
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MinicnnError(f"--out {folder} exists and is not a folder (expected a folder)")
    # check now, before any work, that the folder can be made: the nearest existing ancestor
    # must be a writable folder (the folder itself is only created on the first write)
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise MinicnnError(f"--out {folder} cannot be written (expected a writable folder)")
    return Output(folder, save_arrays=getattr(args, "save_arrays", False))


# -- the usual start of a command --------------------------------------------------------------
@dataclass
class Context:
    """What most commands start from: the network, the inputs, their scores and targets."""

    net: object
    inputs: Inputs
    scores: np.ndarray
    targets: list
    out: Output

    def label(self, i: int) -> str:
        """Short caption for image i: its name and the target class."""
        return f"{self.inputs.names[i]} -> {class_names(self.net)[self.targets[i]]}"


def prepare(
    args, command: str, count: int = DEFAULT_SAMPLES, keep_size: bool | str = False, samples: str = "heldout"
) -> Context:
    """Validate the output folder, load the network and the images, run one forward pass,
    resolve --target and print the top-5 predictions. Nothing is written yet."""
    from minicnn.backend import to_numpy

    out = output(args, command)
    if getattr(args, "image", None) is not None:
        image_files(args.image)  # a missing image fails before a large model is read
    net = load_network(args.weights, args.device)
    target = parse_target(net, getattr(args, "target", "predicted"))
    if getattr(args, "layer", None):
        check_layer(net, args.layer)  # before any work: the error lists the valid names
    inputs = load_inputs(args, net, count=count, keep_size=keep_size, samples=samples)
    scores = to_numpy(net.forward(inputs.x))
    if scores.ndim != 2:
        raise MinicnnError(f"{args.weights} does not end in class scores (output shape {scores.shape[1:]})")
    print(f"minicnn {command}: {Path(args.weights).name}, {len(inputs.names)} image(s)")
    print_top5(net, scores, inputs.names)
    return Context(net, inputs, scores, resolve_targets(target, scores), out)


def feature_layer(net) -> str:
    """Default layer for the feature tools: the last rectified convolutional feature map (the
    last ReLU whose output is (C, H, W)), else the last Conv2D."""
    shapes = net.shapes()
    for layer, shape in zip(reversed(net.layers), reversed(shapes), strict=True):
        if layer.kind == "ReLU" and len(shape) == 3:
            return layer.name
    return last_layer(net, ("Conv2D",))


def parse_unit(text):
    """'strongest' -> None; 'c' -> c; 'c,y,x' -> (c, y, x)."""
    if text is None or str(text).strip().lower() in ("", "strongest", "none"):
        return None
    try:
        parts = [int(p) for p in str(text).split(",")]
    except ValueError:
        raise MinicnnError(f"--unit {text!r}: expected 'strongest', a channel index c, or c,y,x") from None
    return parts[0] if len(parts) == 1 else tuple(parts)


def add_run_options(parser, command: str) -> None:
    """--device, --out (default ./minicnn-out/<command>) and --seed: every command has them."""
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="default: cpu")
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR",
        help=f"output folder (default: ./minicnn-out/{command})",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
