"""``minicnn info FILE``: what a model file holds (format, layers, output shapes, parameters, meta)."""

from __future__ import annotations

from minicnn.cli.report import Report

HELP = "describe a model file: detected format, layers with output shapes and parameters, metadata"
EPILOG = """\
Reads minicnn files, Keras VGG16/VGG19 weight files (Keras 2 and Keras 3 layouts), Keras models
saved with model.save("x.h5"), PyTorch state dicts (.pth, torchvision/timm VGG names), .safetensors
files and ONNX graphs (.onnx); the format is detected from the contents. Layer names listed here are
the ones every --layer option accepts.

examples:
  minicnn info weights/mnist_vgg.h5
  minicnn info vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 --input-size 224
  minicnn info vgg16-397923af.pth
"""


def add_arguments(parser) -> None:
    from pathlib import Path

    from minicnn.cli.options import positive_int
    from minicnn.io.formats import model_files

    parser.add_argument("file", type=Path, metavar="FILE", help=f"model file: {model_files()}")
    parser.add_argument(
        "--input-size", type=positive_int, default=None, metavar="N",
        help="compute output shapes for an N x N input (default: the model's input_shape)",
    )  # fmt: skip


# a metadata value with more numbers than this (a stored mean image has 784 or 150,528) is printed
# as its shape and range: one line per entry, whatever the model stores
MAX_PRINTED_NUMBERS = 8


def _array_summary(value) -> str | None:
    """'array (1, 28, 28) float, min 0, mean 0.13, max 0.99' for a nested list of many numbers,
    else None (printed as it is)."""
    import numpy as np

    if not isinstance(value, (list, tuple, np.ndarray)):
        return None
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):  # ragged, or not numbers
        return None
    if a.size <= MAX_PRINTED_NUMBERS:
        return None
    if not np.isfinite(a).all():
        return f"array {tuple(a.shape)}, not all finite"
    return f"array {tuple(a.shape)}, min {a.min():.4g}, mean {a.mean():.4g}, max {a.max():.4g}"


def _meta_lines(meta: dict) -> list[str]:
    """One line per metadata entry; the class list is shortened to its size and first names, and
    an array of many numbers (a stored mean image) to its shape and range."""
    lines = []
    for key in sorted(meta):
        value = meta[key]
        summary = _array_summary(value)
        if key == "class_names" and isinstance(value, list):
            head = ", ".join(map(str, value[:5]))
            value = f"{len(value)} classes: {head}{', ...' if len(value) > 5 else ''}"
        elif summary is not None:
            value = summary
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        lines.append(f"  {key:<15}  {value}")
    return lines


def layer_table(net, shape) -> str:
    """The layer table: names, kinds, output shapes and parameter counts for an input ``shape``
    (C, H, W), or names and kinds when the size is unknown; columns two spaces apart, however long
    a name is. A graph (a ResNet) is drawn as an indented list of blocks (Graph.blocks), with what
    each sum reads."""
    if shape is not None:
        return net.summary(shape)
    rows = [(0, layer.name, layer) for layer in net.layers] if net.is_chain else net.blocks()
    cells, previous = [], "input"
    for depth, name, layer in rows:
        reads = () if layer is None else net.inputs[name]
        shown = "" if layer is None or reads == (previous,) else "  " + ", ".join(reads)
        cells.append(("  " * depth + name, "" if layer is None else layer.kind, shown))
        previous = name if layer is not None else previous
    width = max(len(name) for name, _, _ in cells)
    kinds = max(len(kind) for _, kind, _ in cells)
    return "\n".join(
        f"{name.ljust(width)}  {kind.ljust(kinds)}{reads}".rstrip() for name, kind, reads in cells
    )


def run(args) -> Report:
    from minicnn.cli.loading import load_model_file

    net, fmt = load_model_file(args.file, with_format=True)
    shape = net.input_shape
    if args.input_size is not None:  # a positive int (checked by the parser)
        channels = shape[0] if shape else net.layers[0].config().get("in_channels", 3)
        shape = (channels, args.input_size, args.input_size)
    report = Report("info", model=str(args.file))
    report.say(f"file     {args.file}")
    report.say(f"format   {fmt}")
    report.say(f"input    {shape if shape else 'unknown'} (C, H, W)")
    report.say(f"layers   {len(net.layers)}, parameters {net.num_params():,}, dtype {net.dtype}")
    report.say("")
    layers = layer_table(net, shape)
    report.say(layers)
    report.tables["layers"] = layers
    report.say("")
    report.say("metadata")
    report.say("\n".join(_meta_lines(net.meta)) or "  (none)")
    report.numbers["layers"] = len(net.layers)
    report.numbers["parameters"] = net.num_params()
    return report
