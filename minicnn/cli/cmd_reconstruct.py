"""``minicnn reconstruct``: project a unit back to pixels by the three backward rules."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.context import prepare
from minicnn.cli.inputs import display_signal
from minicnn.cli.layer_choice import check_layer, feature_layer
from minicnn.cli.options import add_common, parse_unit
from minicnn.cli.output import safe_name
from minicnn.cli.report import Report
from minicnn.rules import MODES, PAPERS

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
    sent = describe_unit(ctx.record.output(layer), unit)
    ctx.report.say(f"  layer {layer}, unit {args.unit}")
    ctx.report.methods += [f"{m} ({PAPERS[m]})" for m in MODES]
    ctx.report.settings.update(layer=layer, unit=str(args.unit))
    model = Path(args.weights).name
    for i, name in enumerate(ctx.inputs.names):
        panels = {m: display_signal(net, signals[m][i]) for m in MODES}
        title = f"{name}: {sent[i]} of {layer} sent back to pixels, {model}"
        picture = figures.reconstruction_figure(ctx.inputs.display[i], panels, title)
        stem = f"{name}_reconstruct_{layer}_unit{safe_name(args.unit)}"
        ctx.out.png(f"{stem}.png", picture, title)
        ctx.out.arrays(
            f"{stem}.npz", {m: signals[m][i] for m in MODES},
            {**ctx.meta(i, "reconstruct", layer=layer, unit=str(args.unit)), "sent": sent[i]},
        )  # fmt: skip
    return ctx.report


def describe_unit(activations, unit) -> list[str]:
    """Per image, which activation was sent back, in words (the strongest one is found per image,
    as mc.reconstruct finds it). activations: (N, C, H, W) or (N, D) of the chosen layer."""
    import numpy as np

    from minicnn.backend import to_numpy

    a = to_numpy(activations)
    if unit is None:
        found = []
        for row in a:
            where = np.unravel_index(int(np.argmax(row)), row.shape)
            found.append(f"the strongest activation (unit {','.join(map(str, where))}, {row[where]:.3g})")
        return found
    if isinstance(unit, tuple):
        return [f"activation {','.join(map(str, unit))}"] * len(a)
    return [f"feature map {unit}"] * len(a)
