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
    add_common(parser)
    parser.add_argument(
        "--smoothgrad", type=int, default=0, metavar="N",
        help="average over N noisy copies (SmoothGrad, Smilkov et al. 2017; default 0: off)",
    )  # fmt: skip


def run(args) -> Report:
    import minicnn as mc
    from minicnn.backend import to_numpy
    from minicnn.render import figures

    if args.smoothgrad < 0:
        raise MinicnnError(f"--smoothgrad must be >= 0, got {args.smoothgrad}")
    ctx = prepare(args, "saliency")
    method = "saliency |dS_c/dI| (Simonyan et al. 2013)" + (
        f", SmoothGrad over {args.smoothgrad} noisy copies (Smilkov et al. 2017)" if args.smoothgrad else ""
    )
    ctx.report.methods.append(method)
    ctx.report.settings["smoothgrad"] = args.smoothgrad
    sal = to_numpy(
        mc.saliency(
            ctx.net, ctx.inputs.x, ctx.targets, samples=args.smoothgrad, seed=args.seed, record=ctx.record
        )
    )
    model = Path(args.weights).name
    for i, name in enumerate(ctx.inputs.names):
        stem = ctx.stem(i, "saliency")
        title = f"saliency of {ctx.label(i)}, {model}"
        ctx.out.png(f"{stem}.png", figures.saliency_figure(ctx.inputs.display[i], sal[i], title), title)
        ctx.out.arrays(
            f"{stem}.npz", {"saliency": sal[i]}, ctx.meta(i, "saliency", smoothgrad=args.smoothgrad)
        )
        ctx.report.numbers[f"{name} saliency max"] = float(sal[i].max())
    return ctx.report
