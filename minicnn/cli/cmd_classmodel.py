"""``minicnn classmodel``: class model images by gradient ascent (Simonyan et al. 2013, sec. 2)."""

from __future__ import annotations

from minicnn.cli.classes import class_names, parse_target
from minicnn.cli.inputs import shipped_samples
from minicnn.cli.loading import load_network
from minicnn.cli.options import add_common
from minicnn.cli.output import open_output
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "class models: the image that maximises a class score (Simonyan et al. 2013, sec. 2)"
EPILOG = """\
Gradient ascent from the zero (mean) image on S_c(I) - lambda ||I||^2, the unnormalised score
(Simonyan, Vedaldi & Zisserman 2013, sec. 2, fig. 1), one image per class in one batch, drawn as a
labelled grid. --regularize adds the image priors of Yosinski et al. (2015): jitter, L2 decay,
Gaussian blur every 4 steps and pixel clipping.

examples:
  minicnn classmodel                          # every class of the shipped digit model
  minicnn classmodel --target 3 --steps 500
  minicnn classmodel --target all --regularize
"""


def add_arguments(parser) -> None:
    add_common(parser, image=False, target=False)
    parser.add_argument(
        "--target", default="all", metavar="CLASS",
        help="'all' (default: every class, at most 16), a class index or a class name",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=200, help="ascent steps (default 200)")
    parser.add_argument("--lr", type=float, default=0.1, help="step size (default 0.1)")
    parser.add_argument("--l2", type=float, default=0.01, help="lambda of ||I||^2 (default 0.01)")
    parser.add_argument("--regularize", action="store_true", help="add Yosinski et al. (2015) image priors")
    parser.add_argument(
        "--start", choices=("auto", "zero"), default="auto",
        help="start image: auto (default: the mean shipped digit for the digit models) or zero "
        "(black for digit models, the mean image for caffe-preprocessed ones)",
    )  # fmt: skip


def mean_image(net, choice: str):
    """The start and L2 centre of the ascent (Simonyan et al. start from the training mean).

    "auto": None (the tool's default) when the file stores ``meta["mean_image"]``; for a one-channel
    "unit" network of the digits' size without one, the mean of the shipped held-out digits (a digit
    model can be dead at the black image: every first-layer ReLU off, zero gradient).
    "zero": the tool's default (black for "unit" inputs, the mean for "caffe"/"torch").
    """
    if choice == "zero" or net.meta.get("mean_image") is not None:
        return None
    if net.meta.get("preprocess") != "unit" or tuple(net.input_shape or ()) != (1, 28, 28):
        return None
    import numpy as np

    images, _, _ = shipped_samples(10**9, one_per_class=False)
    mean = images.astype(np.float64).mean(axis=0) / 255.0  # (28, 28, 1): the held-out digits
    return np.moveaxis(mean, -1, 0).astype(net.dtype)


def regularizers(net, enabled: bool):
    """The Yosinski et al. (2015, sec. 3) priors, with clipping to the displayable pixel range."""
    if not enabled:
        return ()
    from minicnn.tools.regularizers import Clip, GaussianBlur, Jitter, L2Decay

    regs = [Jitter(2), L2Decay(0.01), GaussianBlur(0.5, every=4)]
    if net.meta.get("preprocess") == "unit":
        regs.append(Clip(0.0, 1.0))
    return tuple(regs)


def run(args) -> Report:
    import minicnn as mc

    out = open_output(args, "classmodel")
    report = out.report
    net = load_network(args.weights, args.device)
    names = class_names(net)
    if str(args.target).lower() == "all":
        classes = list(range(min(len(names), 16)))
    else:
        target = parse_target(net, args.target)
        if target == "predicted":
            raise MinicnnError("--target: expected 'all', a class index or a class name")
        classes = [target]
    report.say(f"minicnn classmodel: {args.weights.name}, classes {classes}, {args.steps} steps")
    result = mc.class_model(
        net, classes, steps=args.steps, lr=args.lr, l2=args.l2,
        regularizers=regularizers(net, args.regularize), seed=args.seed,
        mean_image=mean_image(net, args.start),
    )  # fmt: skip
    from minicnn.backend import to_numpy
    from minicnn.render import figures

    scores = to_numpy(net.forward(result.image))
    top = scores.argmax(axis=1)
    labels = [f"{names[c]} (top-1: {names[t]})" for c, t in zip(classes, top, strict=True)]
    for c, h, t in zip(classes, result.history, top, strict=True):
        report.say(f"  class {names[c]}: objective {h[0]:.3g} -> {h[-1]:.3g}, recognised as {names[t]}")
        report.numbers[f"class {names[c]} objective"] = float(h[-1])
    ncols = min(len(classes), 5)
    suffix = "_regularized" if args.regularize else ""
    out.png(f"classmodels{suffix}.png", figures.tile_grid(result.display, labels, ncols=ncols))
    out.npy(f"classmodels{suffix}.npy", result.image)
    return report
