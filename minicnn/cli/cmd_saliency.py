"""``minicnn saliency``: image-specific class saliency (Simonyan et al. 2013, sec. 3)."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.context import prepare
from minicnn.cli.options import add_common
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "saliency maps: the pixels whose change moves the class score most (Simonyan et al. 2013)"
EPILOG = """\
The map is max over colour channels of |dS_c/dI|, one backward pass for the batch; written as a
heat map and as an overlay on the input (Simonyan, Vedaldi & Zisserman 2013, sec. 3, fig. 2).

examples:
  minicnn saliency                                  # shipped digit model, shipped digits
  minicnn saliency --image digit.png --target 7
  minicnn saliency --weights vgg16_weights_tf_dim_ordering_tf_kernels.h5 \\
                   --image photo.jpg --target predicted
"""


def add_arguments(parser) -> None:
    from minicnn.cli.options import nonnegative_int

    add_common(parser)
    parser.add_argument(
        "--smoothgrad", type=nonnegative_int, default=0, metavar="N",
        help="average over N noisy copies (SmoothGrad, Smilkov et al. 2017; default 0: off)",
    )  # fmt: skip
    parser.add_argument(
        "--times-input", action="store_true",
        help="gradient x input: max over channels of |x dS/dI| (Shrikumar et al. 2016)",
    )  # fmt: skip
    parser.add_argument(
        "--signed", action="store_true",
        help="keep the sign: per pixel the channel's gradient of largest magnitude, drawn red (raises "
        "the score) / blue (lowers it)",
    )  # fmt: skip


def run(args) -> Report:
    import numpy as np

    import minicnn as mc
    from minicnn.backend import to_numpy
    from minicnn.render import figures

    if args.smoothgrad < 0:
        raise MinicnnError(f"--smoothgrad must be >= 0, got {args.smoothgrad}")
    signed, times_input = getattr(args, "signed", False), getattr(args, "times_input", False)
    ctx = prepare(args, "saliency")
    term = "x dS/dI" if times_input else "dS/dI"
    unit = f"{term}, signed" if signed else f"max_c |{term}|"
    method = f"saliency {unit} (Simonyan et al. 2013)"
    method += ", gradient x input (Shrikumar et al. 2016)" if times_input else ""
    method += (
        f", SmoothGrad over {args.smoothgrad} noisy copies (Smilkov et al. 2017)" if args.smoothgrad else ""
    )
    ctx.report.methods.append(method)
    ctx.report.settings.update(smoothgrad=args.smoothgrad, signed=signed, times_input=times_input)
    sal = to_numpy(
        mc.saliency(
            ctx.net, ctx.inputs.x, ctx.targets, samples=args.smoothgrad, seed=args.seed, record=ctx.record,
            signed=signed, times_input=times_input, progress=not getattr(args, "no_progress", False),
        )
    )  # fmt: skip
    if signed:  # (N, C, H, W) -> (N, H, W): per pixel the channel of largest magnitude, with its sign
        pick = np.abs(sal).argmax(axis=1)[:, None]
        sal = np.take_along_axis(sal, pick, axis=1)[:, 0]
    model = Path(args.weights).name
    kind = method_name(args.smoothgrad, times_input)
    for i, name in enumerate(ctx.inputs.names):
        stem = ctx.stem(i, file_part(args.smoothgrad, times_input, signed))
        title = f"{kind} ({unit}) of {ctx.label(i)}, {model}"
        ctx.out.png(f"{stem}.png", figures.saliency_figure(ctx.inputs.display[i], sal[i], title, unit), title)
        meta = ctx.meta(i, kind, smoothgrad=args.smoothgrad, signed=signed, times_input=times_input)
        ctx.out.arrays(f"{stem}.npz", {"saliency": sal[i]}, meta)
        ctx.report.numbers[f"{name} saliency max"] = float(sal[i].max())
    return ctx.report


def method_name(smoothgrad: int, times_input: bool) -> str:
    """The method that made the map, in words, for titles and metadata: "saliency", "gradient x
    input", "SmoothGrad of saliency over 50 noisy copies", ... (the unit beside it in the title says
    whether the sign is kept)."""
    name = "gradient x input" if times_input else "saliency"
    if smoothgrad:
        name = f"SmoothGrad of {name} over {smoothgrad} noisy copies"
    return name


def file_part(smoothgrad: int, times_input: bool, signed: bool) -> str:
    """The method in a file name: "saliency" or "smoothgrad", then "_signed" and "_x_input" as set
    (e.g. ``cat_smoothgrad_x_input_class281.png``)."""
    return (
        ("smoothgrad" if smoothgrad else "saliency")
        + ("_signed" if signed else "")
        + ("_x_input" if times_input else "")
    )
