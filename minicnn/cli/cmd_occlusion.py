"""``minicnn occlusion``: occlusion sensitivity maps (Zeiler & Fergus 2013, sec. 4.2)."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.classes import class_names
from minicnn.cli.context import prepare
from minicnn.cli.options import add_common
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "occlusion: slide a grey square over the image, map the class probability and top class"
EPILOG = """\
For every position of a square occluder: the probability of the target class and the most probable
class (Zeiler & Fergus 2013, sec. 4.2, fig. 7), and per pixel the mean drop of the target score over
the windows that cover it (the attribution Captum's Occlusion computes). Forward passes are batched.
By default the square and the step are fractions of the image (2/7 and 1/14 of its height: 8 and 2
pixels on a 28x28 digit, 64 and 16 on a 224x224 photo, 11x11 positions either way); the values used
are printed.

examples:
  minicnn occlusion                                  # shipped digit model: 8x8 square, stride 2
  minicnn occlusion --size 6 --stride 2 --fill zero
  minicnn occlusion --weights vgg16_weights_tf_dim_ordering_tf_kernels.h5 --image photo.jpg \\
                    --size 48 --stride 16
"""


def add_arguments(parser) -> None:
    from minicnn.cli.options import occluder_fill, positive_int

    add_common(parser)
    parser.add_argument(
        "--size", type=positive_int, default=None,
        help="occluder side in pixels (default: 2/7 of the image height, 8 on the digits)",
    )  # fmt: skip
    parser.add_argument(
        "--stride", type=positive_int, default=None,
        help="step between positions in pixels (default: 1/14 of the image height, 2 on the digits)",
    )  # fmt: skip
    parser.add_argument(
        "--fill", type=occluder_fill, default="grey",
        help="grey (default), zero, mean, or a number in input space",
    )  # fmt: skip


def run(args) -> Report:
    import minicnn as mc
    from minicnn.render import figures
    from minicnn.tools.occlusion import default_occluder

    fill = args.fill
    if fill not in ("grey", "zero", "mean"):
        try:
            fill = float(fill)
        except ValueError:
            raise MinicnnError(f"--fill {fill!r}: expected grey, zero, mean or a number") from None
    ctx = prepare(args, "occlusion")
    height = int(ctx.inputs.x.shape[2])
    default_size, default_stride = default_occluder(height)
    size = args.size if args.size is not None else default_size
    stride = args.stride if args.stride is not None else default_stride
    result = mc.occlusion(
        ctx.net, ctx.inputs.x, ctx.targets, size=size, stride=stride, fill=fill,
        progress=not getattr(args, "no_progress", False), record=ctx.record,
    )  # fmt: skip
    names = class_names(ctx.net)
    shape = result.prob.shape[1:]
    chosen = "" if args.size is not None and args.stride is not None else " (scaled to the image)"
    ctx.report.say(
        f"  {size}x{size} occluder, stride {stride}{chosen}, fill {args.fill}: "
        f"{shape[0]}x{shape[1]} positions on {height}x{int(ctx.inputs.x.shape[3])} pixels"
    )
    ctx.report.methods.append("occlusion sensitivity (Zeiler & Fergus 2013)")
    ctx.report.settings.update(size=size, stride=stride, fill=args.fill, positions=[int(s) for s in shape])
    model = Path(args.weights).name
    for i, name in enumerate(ctx.inputs.names):
        target = names[ctx.targets[i]]
        low = float(result.prob[i].min())
        ctx.report.say(f"  {name}: p({target}) {result.base_prob[i]:.3f} unoccluded, {low:.3f} at worst")
        ctx.report.numbers[f"{name} p unoccluded"] = float(result.base_prob[i])
        ctx.report.numbers[f"{name} p at worst"] = low
        image = ctx.inputs.display[i]
        spread = [
            figures.positions_to_pixels(m[i], result.ys, result.xs, size, image.shape[:2])
            for m in (result.prob, result.top_class)
        ]
        title = f"occlusion of {ctx.label(i)}, {model}: {size}x{size} grey square, stride {stride}"
        picture = figures.occlusion_figure(image, *spread, names, target, result.attribution[i], title=title)
        stem = ctx.stem(i, "occlusion")
        ctx.out.png(f"{stem}.png", picture, title)
        ctx.out.arrays(
            f"{stem}.npz",
            {
                "prob": result.prob[i], "top_class": result.top_class[i], "score": result.score[i],
                "attribution": result.attribution[i], "ys": result.ys, "xs": result.xs,
            },
            ctx.meta(i, "occlusion", size=size, stride=stride, fill=args.fill),
        )  # fmt: skip
    return ctx.report
