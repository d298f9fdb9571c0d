"""``minicnn occlusion``: occlusion sensitivity maps (Zeiler & Fergus 2013, sec. 4.2)."""

from __future__ import annotations

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

examples:
  minicnn occlusion                                  # shipped digit model, 8x8 square, stride 4
  minicnn occlusion --size 6 --stride 2 --fill zero
  minicnn occlusion --weights vgg16_weights_tf_dim_ordering_tf_kernels.h5 --image photo.jpg \\
                    --size 48 --stride 16
"""


def add_arguments(parser) -> None:
    add_common(parser)
    parser.add_argument("--size", type=int, default=8, help="occluder side in pixels (default 8)")
    parser.add_argument("--stride", type=int, default=4, help="step between positions (default 4)")
    parser.add_argument(
        "--fill", default="grey", help="grey (default), zero, mean, or a number in input space"
    )


def run(args) -> Report:
    import minicnn as mc
    from minicnn.render import figures

    fill = args.fill
    if fill not in ("grey", "zero", "mean"):
        try:
            fill = float(fill)
        except ValueError:
            raise MinicnnError(f"--fill {fill!r}: expected grey, zero, mean or a number") from None
    ctx = prepare(args, "occlusion")
    result = mc.occlusion(
        ctx.net, ctx.inputs.x, ctx.targets, size=args.size, stride=args.stride, fill=fill, progress=False,
        record=ctx.record,
    )  # fmt: skip
    names = class_names(ctx.net)
    shape = result.prob.shape[1:]
    ctx.report.say(
        f"  {args.size}x{args.size} occluder, stride {args.stride}: {shape[0]}x{shape[1]} positions"
    )
    for i, name in enumerate(ctx.inputs.names):
        target = names[ctx.targets[i]]
        low = float(result.prob[i].min())
        ctx.report.say(f"  {name}: p({target}) {result.base_prob[i]:.3f} unoccluded, {low:.3f} at worst")
        ctx.report.numbers[f"{name} p unoccluded"] = float(result.base_prob[i])
        ctx.report.numbers[f"{name} p at worst"] = low
        image = ctx.inputs.display[i]
        spread = [
            figures.positions_to_pixels(m[i], result.ys, result.xs, args.size, image.shape[:2])
            for m in (result.prob, result.top_class)
        ]
        picture = figures.occlusion_figure(image, *spread, names, target, result.attribution[i])
        ctx.out.png(f"{name}_occlusion.png", picture)
        ctx.out.npy(f"{name}_occlusion_prob.npy", result.prob[i])
        ctx.out.npy(f"{name}_occlusion_top_class.npy", result.top_class[i])
        ctx.out.npy(f"{name}_occlusion_attribution.npy", result.attribution[i])
    return ctx.report
