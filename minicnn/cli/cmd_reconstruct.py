"""``minicnn reconstruct``: project a unit back to pixels in the three backward modes."""

from __future__ import annotations

from minicnn.cli.context import prepare
from minicnn.cli.inputs import display_signal
from minicnn.cli.layer_choice import check_layer, feature_layer
from minicnn.cli.options import add_common, parse_unit
from minicnn.cli.report import Report

HELP = "reconstructions: a unit projected to pixels by DeconvNet, gradient and guided backprop"
EPILOG = """\
One forward pass, then the chosen activations of --layer (all others set to zero) are sent back to
the image by the three rules, shown side by side with the input, zero-centred and contrast-
normalised: DeconvNet (Zeiler & Fergus 2013, sec. 2), the gradient (Simonyan et al. 2013, sec. 4)
and guided backpropagation (Springenberg et al. 2015). Only the ReLU rule differs between them.

examples:
  minicnn reconstruct                                # strongest unit of the last conv block
  minicnn reconstruct --layer block1_conv2_relu --unit 5
  minicnn reconstruct --layer block2_conv1 --unit 3,4,4 --image digit.png
"""

MODES = ("deconvnet", "gradient", "guided")


def add_arguments(parser) -> None:
    add_common(parser, target=False, layer="")
    parser.add_argument(
        "--unit", default="strongest", metavar="UNIT",
        help="'strongest' (default), a feature map c, or one activation c,y,x",
    )  # fmt: skip


def run(args) -> Report:
    import minicnn as mc
    from minicnn.backend import to_numpy
    from minicnn.render import figures

    unit = parse_unit(args.unit)
    ctx = prepare(args, "reconstruct")
    net = ctx.net
    layer = check_layer(net, args.layer or feature_layer(net))
    # one forward pass (prepare's) serves the three backward rules
    signals = {
        m: to_numpy(mc.reconstruct(net, ctx.inputs.x, layer, unit, mode=m, record=ctx.record)) for m in MODES
    }
    ctx.report.say(f"  layer {layer}, unit {args.unit}")
    for i, name in enumerate(ctx.inputs.names):
        panels = {m: display_signal(net, signals[m][i]) for m in MODES}
        picture = figures.reconstruction_figure(ctx.inputs.display[i], panels, name)
        ctx.out.png(f"{name}_{layer}.png", picture)
        for m in MODES:
            ctx.out.npy(f"{name}_{layer}_{m}.npy", signals[m][i])
    return ctx.report
