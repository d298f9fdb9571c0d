"""``minicnn maximize``: activation maximisation of hidden units (Erhan et al. 2009)."""

from __future__ import annotations

from minicnn.cli.context import say_work
from minicnn.cli.layer_choice import check_layer, feature_layer
from minicnn.cli.loading import load_network
from minicnn.cli.options import add_common, parse_unit, positive_float, positive_int
from minicnn.cli.output import open_output
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "activation maximisation: inputs of fixed norm that excite one hidden unit most"
EPILOG = """\
Gradient ascent in input space on the activation of a unit or a whole feature map of any layer, from
random starts in [0, 1], keeping ||x|| fixed by projection (Erhan, Bengio, Courville & Vincent 2009,
sec. 3.1, fig. 3). The results are drawn as a labelled grid, one tile per unit.

examples:
  minicnn maximize                                   # first 8 feature maps of the last conv block
  minicnn maximize --layer block1_conv1 --units 0 1 2 3 --steps 200
  minicnn maximize --layer fc1_relu --units 5 17 --starts 3
  minicnn maximize --layer block2_conv1 --units 4,3,3  # one activation: channel 4 at (3, 3)
"""


def add_arguments(parser) -> None:
    add_common(parser, image=False, target=False, layer="")
    parser.add_argument(
        "--units", nargs="+", default=None, metavar="UNIT",
        help="feature maps c or activations c,y,x (default: the first 8 of the layer)",
    )  # fmt: skip
    parser.add_argument("--steps", type=positive_int, default=100, help="ascent steps (default 100)")
    parser.add_argument("--lr", type=positive_float, default=0.05, help="step size (default 0.05)")
    parser.add_argument("--starts", type=positive_int, default=1, help="random starts per unit (default 1)")


def run(args) -> Report:
    import numpy as np

    import minicnn as mc
    from minicnn.backend import to_numpy
    from minicnn.render import figures

    units = None if args.units is None else [parse_unit(u) for u in args.units]
    if units is not None and None in units:
        raise MinicnnError("--units: expected feature maps c or activations c,y,x")
    out = open_output(args, "maximize")
    report = out.report
    net = load_network(args.weights, args.device)
    layer = check_layer(net, args.layer or feature_layer(net))
    shape = net.shapes()[net.index(layer)]
    if units is None:
        units = list(range(min(8, shape[0])))
    report.say(
        f"minicnn maximize: {args.weights.name}, layer {layer} {shape}, units {units}, {args.steps} steps"
    )
    say_work(
        report, net, f"{len(units)} units x {args.starts} starts x {args.steps} steps",
        len(units) * args.starts * args.steps, "--units, --starts or --steps",
    )  # fmt: skip
    report.model = str(args.weights)
    report.methods.append("activation maximisation (Erhan et al. 2009)")
    report.settings.update(layer=layer, units=[str(u) for u in units], steps=args.steps, lr=args.lr)
    result = mc.maximize(
        net, layer, units, starts=args.starts, steps=args.steps, lr=args.lr, seed=args.seed,
        progress=not getattr(args, "no_progress", False),
    )  # fmt: skip
    activation = to_numpy(result.info["activation"])
    labels = []
    for row, unit in enumerate(result.info["unit"]):
        text = ",".join(str(int(v)) for v in np.atleast_1d(unit))
        labels.append(f"{text}: {activation[row]:.3g}")
        report.say(f"  unit {text}: activation {activation[row]:.4g}")
        report.numbers[f"unit {text} activation"] = float(activation[row])
    ncols = min(len(labels), 8)
    title = (
        f"activation maximisation in {args.weights.name}, layer {layer}: inputs of fixed norm that excite "
        f"each unit most ({args.steps} steps from random starts); label: unit: activation reached"
    )
    stem = f"{layer}_maximized"
    out.png(f"{stem}.png", figures.tile_grid(result.display, labels, ncols=ncols, title=title), title)
    meta = {"model": str(args.weights), "method": "maximize", "layer": layer, "units": labels,
            "steps": args.steps, "lr": args.lr, "starts": args.starts}  # fmt: skip
    out.arrays(f"{stem}.npz", {"image": result.image, "activation": activation}, meta)
    return report
