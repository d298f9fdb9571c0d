"""``minicnn info FILE``: what a model file holds (format, layers, output shapes, parameters, meta)."""

from __future__ import annotations

from minicnn.cli.report import Report

HELP = "describe a model file: detected format, layers with output shapes and parameters, metadata"
EPILOG = """\
Reads minicnn files, Keras VGG16/VGG19 weight files (Keras 2 and Keras 3 layouts) and Keras models
saved with model.save("x.h5"); the format is detected from the contents. Layer names listed here
are the ones every --layer option accepts.

examples:
  minicnn info weights/mnist_vgg.h5
  minicnn info vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 --input-size 224
"""


def add_arguments(parser) -> None:
    from pathlib import Path

    parser.add_argument("file", type=Path, metavar="FILE", help="model file (.h5)")
    parser.add_argument(
        "--input-size", type=int, default=None, metavar="N",
        help="compute output shapes for an N x N input (default: the model's input_shape)",
    )  # fmt: skip


def _meta_lines(meta: dict) -> list[str]:
    """One line per metadata entry; the class list is shortened to its size and first names."""
    lines = []
    for key in sorted(meta):
        value = meta[key]
        if key == "class_names" and isinstance(value, list):
            head = ", ".join(map(str, value[:5]))
            value = f"{len(value)} classes: {head}{', ...' if len(value) > 5 else ''}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        lines.append(f"  {key:<17}{value}")
    return lines


def run(args) -> Report:
    from minicnn.cli.loading import load_model_file
    from minicnn.errors import MinicnnError

    net, fmt = load_model_file(args.file, with_format=True)
    shape = net.input_shape
    if args.input_size is not None:
        if args.input_size < 1:
            raise MinicnnError(f"--input-size must be a positive int, got {args.input_size}")
        channels = shape[0] if shape else net.layers[0].config().get("in_channels", 3)
        shape = (channels, args.input_size, args.input_size)
    report = Report("info", model=str(args.file))
    report.say(f"file     {args.file}")
    report.say(f"format   {fmt}")
    report.say(f"input    {shape if shape else 'unknown'} (C, H, W)")
    report.say(f"layers   {len(net.layers)}, parameters {net.num_params():,}, dtype {net.dtype}")
    report.say("")
    if shape is not None:
        layers = net.summary(shape)
    else:
        layers = "\n".join(f"{layer.name:<18}{layer.kind}" for layer in net.layers)
    report.say(layers)
    report.tables["layers"] = layers
    report.say("")
    report.say("metadata")
    report.say("\n".join(_meta_lines(net.meta)) or "  (none)")
    report.numbers["layers"] = len(net.layers)
    report.numbers["parameters"] = net.num_params()
    return report
