"""``minicnn invert``: feature inversion (Mahendran & Vedaldi 2015)."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.context import prepare, say_work
from minicnn.cli.layer_choice import check_layer, feature_layer
from minicnn.cli.options import add_common, positive_float, positive_int
from minicnn.cli.report import Report

HELP = "inversion: reconstruct an image from its representation at a layer (Mahendran & Vedaldi 2015)"
EPILOG = """\
Finds an image whose representation at each chosen layer matches the input's, minimising the relative
feature error plus alpha-norm and total-variation priors (Mahendran & Vedaldi 2015, sec. 2-3, fig. 6).
Deeper layers keep less of the image: the rows of the figure show what each layer still knows.

examples:
  minicnn invert                                     # two digits, every pooling layer and the last ReLU
  minicnn invert --layer block1_pool,fc1_relu --steps 300
  minicnn invert --image digit.png --layer block2_pool
"""


def add_arguments(parser) -> None:
    add_common(parser, target=False, layer="")
    parser.add_argument("--steps", type=positive_int, default=200, help="optimisation steps (default 200)")
    parser.add_argument("--lr", type=positive_float, default=0.05, help="Adam step size (default 0.05)")


def default_layers(net) -> list[str]:
    """Every pooling output and the last rectifier: from nearly pixels to nearly classes."""
    layers = [layer.name for layer in net.layers if layer.is_pooling]
    rectifiers = [layer.name for layer in net.layers if layer.is_rectifier]
    if rectifiers and rectifiers[-1] not in layers:
        layers.append(rectifiers[-1])
    return layers or [feature_layer(net)]


def run(args) -> Report:
    import minicnn as mc
    from minicnn.backend import to_numpy
    from minicnn.render import figures

    requested = [s.strip() for s in args.layer.split(",")] if args.layer else None
    args.layer = None  # validated below, one name at a time
    ctx = prepare(args, "invert", count=2)
    net = ctx.net
    layers = [check_layer(net, name) for name in requested] if requested else default_layers(net)
    n = len(ctx.inputs.names)
    say_work(
        ctx.report, net, f"{len(layers)} layers x {args.steps} steps x {n} images",
        len(layers) * args.steps * n, "--layer or --steps", shape=tuple(ctx.inputs.x.shape[1:]),
    )  # fmt: skip
    tiles, labels = [], []
    results = {}
    for layer in layers:
        results[layer] = mc.invert(
            net, ctx.inputs.x, layer, steps=args.steps, lr=args.lr, seed=args.seed,
            progress=not getattr(args, "no_progress", False),
        )  # fmt: skip
        errors = results[layer].info["final_error"]
        ctx.report.say(f"  {layer}: relative feature error {', '.join(f'{e:.3f}' for e in errors)}")
        for name, e in zip(ctx.inputs.names, errors, strict=True):
            ctx.report.numbers[f"{name} {layer} relative feature error"] = float(e)
    for i, name in enumerate(ctx.inputs.names):
        tiles.append(ctx.inputs.display[i])
        labels.append(name)
        for layer in layers:
            tiles.append(results[layer].display[i])
            labels.append(f"{layer} ({results[layer].info['final_error'][i]:.2f})")
    ncols = len(layers) + 1
    ctx.report.methods.append("feature inversion (Mahendran & Vedaldi 2015)")
    ctx.report.settings.update(layers=layers, steps=args.steps, lr=args.lr)
    title = (
        f"inversions in {Path(args.weights).name}: images rebuilt from each layer's representation of "
        f"the input ({args.steps} Adam steps); label: layer (relative feature error)"
    )
    ctx.out.png("inversions.png", figures.tile_grid(tiles, labels, ncols=ncols, title=title), title)
    for i, name in enumerate(ctx.inputs.names):
        arrays = {layer: to_numpy(results[layer].image[i]) for layer in layers}
        errors = {layer: float(results[layer].info["final_error"][i]) for layer in layers}
        ctx.out.arrays(
            f"{name}_invert.npz", arrays, {**ctx.meta(i, "invert", steps=args.steps), "errors": errors}
        )
    return ctx.report
