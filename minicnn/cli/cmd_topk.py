"""``minicnn topk``: the top-9 DeconvNet projections of feature maps over a dataset (Zeiler & Fergus 2013)."""

from __future__ import annotations

from minicnn.cli.context import prepare
from minicnn.cli.inputs import display_images, display_signal
from minicnn.cli.layer_choice import check_layer, feature_layer
from minicnn.cli.options import add_common
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "top-9 projections: strongest activations of feature maps over a dataset, projected to pixels"
EPILOG = """\
Scans a dataset (a folder of images, or the shipped held-out digits) for the k strongest activations
of each chosen feature map of --layer, projects each back to pixels (DeconvNet by default) and cuts
the receptive-field patch from its image: projections on the left, patches on the right, strongest
first (Zeiler & Fergus 2013, sec. 2.1, fig. 2).

examples:
  minicnn topk                                     # 4 maps of the last conv block, 200 digits
  minicnn topk --layer block1_conv2_relu --channels 0 5 9 --k 16
  minicnn topk --weights vgg16_weights_tf_dim_ordering_tf_kernels.h5 --image photos/ \\
               --layer block3_conv3_relu --mode guided
"""


def add_arguments(parser) -> None:
    add_common(parser, target=False, layer="")
    parser.add_argument("--k", type=int, default=9, help="images per feature map (default 9)")
    parser.add_argument(
        "--channels", type=int, nargs="+", default=None, metavar="C",
        help="feature maps to show (default: the first 4)",
    )  # fmt: skip
    parser.add_argument(
        "--mode", choices=("deconvnet", "gradient", "guided"), default="deconvnet",
        help="backward rule of the projections (default deconvnet)",
    )  # fmt: skip
    parser.add_argument(
        "--count", type=int, default=200, help="shipped held-out digits scanned (default 200)"
    )


def run(args) -> Report:
    import numpy as np

    import minicnn as mc
    from minicnn.render import figures

    if args.count < 1:
        raise MinicnnError(f"--count must be >= 1, got {args.count}")
    args.target = "predicted"
    ctx = prepare(args, "topk", count=args.count, samples="dataset")
    net = ctx.net
    layer = check_layer(net, args.layer or feature_layer(net))
    x = ctx.inputs.x
    channels = (
        args.channels if args.channels is not None else list(range(min(4, net.shapes()[net.index(layer)][0])))
    )
    ctx.report.say(f"  layer {layer}, channels {channels}, top-{args.k} over {len(x)} images ({args.mode})")
    result = mc.topk(net, x, layer, k=args.k, mode=args.mode, channels=channels)
    for row, channel in enumerate(result.channels):
        keep = result.index[row] >= 0  # fewer than k images: empty slots
        patches = display_images(net, result.patches[row][keep])
        projections = [display_signal(net, p) for p in result.projections[row][keep]]
        values = ", ".join(f"{v:.3g}" for v in result.values[row][keep][:3])
        ctx.report.say(f"  channel {int(channel)}: strongest activations {values}, ...")
        ctx.report.numbers[f"channel {int(channel)} strongest activation"] = float(result.values[row][0])
        picture = figures.topk_figure(projections, patches, f"{layer}[{int(channel)}]")
        ctx.out.png(f"{layer}_ch{int(channel)}_top{args.k}.png", picture)
    ctx.out.npy(f"{layer}_top{args.k}_projections.npy", result.projections)
    ctx.out.npy(f"{layer}_top{args.k}_patches.npy", result.patches)
    ctx.out.npy(f"{layer}_top{args.k}_index.npy", np.asarray(result.index))
    return ctx.report
