"""``minicnn classmodel``: class model images by gradient ascent (Simonyan et al. 2013, sec. 2)."""

from __future__ import annotations

import sys
import warnings

from minicnn.cli.classes import class_names, parse_target
from minicnn.cli.inputs import shipped_samples
from minicnn.cli.loading import load_network
from minicnn.cli.options import add_common
from minicnn.cli.output import open_output
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "class models: the image that maximises a class score (Simonyan et al. 2013, sec. 2)"
EPILOG = """\
Gradient ascent on S_c(I) - lambda ||I - start||^2, the unnormalised score (Simonyan, Vedaldi &
Zisserman 2013, sec. 2, fig. 1), one image per class in one batch, drawn as a labelled grid. The
paper starts from the zero image of a mean-subtracted network, i.e. the mean training image; the
shipped digit models store theirs (the mean held-out digit, meta["mean_image"]) and start there by
default. --start zero starts from the zero input instead (black for a [0, 1] digit model, which is
dead there: the image does not move). --regularize adds the image priors of Yosinski et al.
(2015): jitter, L2 decay, Gaussian blur every 4 steps and pixel clipping.

examples:
  minicnn classmodel                          # every class of the shipped digit model
  minicnn classmodel --target 3 --steps 500
  minicnn classmodel --target all --regularize
"""


def add_arguments(parser) -> None:
    from minicnn.cli.options import nonnegative_float, positive_float, positive_int

    add_common(parser, image=False, target=False)
    parser.add_argument(
        "--target", default="all", metavar="CLASS",
        help="'all' (default: every class, at most 16), a class index or a class name",
    )  # fmt: skip
    parser.add_argument("--steps", type=positive_int, default=200, help="ascent steps (default 200)")
    parser.add_argument("--lr", type=positive_float, default=0.1, help="step size (default 0.1)")
    parser.add_argument("--l2", type=nonnegative_float, default=0.01, help="lambda of ||I||^2 (default 0.01)")
    parser.add_argument("--regularize", action="store_true", help="add Yosinski et al. (2015) image priors")
    parser.add_argument(
        "--start", choices=("auto", "zero"), default="auto",
        help="start image: auto (default: the model file's meta['mean_image'] when it has one, as the "
        "shipped models do; else the mean shipped digit for a 28x28 one-channel model) or zero (the "
        "zero input: black for [0, 1] digit models, the mean image for caffe-preprocessed ones)",
    )  # fmt: skip


def mean_image(net, choice: str):
    """The start and L2 centre of the ascent (Simonyan et al. start from the training mean).

    "auto": None (the tool's default: ``meta["mean_image"]`` when the file stores one, else the
    zero input); for a one-channel "unit" network of the digits' size without one, the mean of the
    shipped held-out digits (a digit model can be dead at the black image: every first-layer ReLU
    off, zero gradient).
    "zero": the zero input itself, (C, H, W) zeros (black for "unit" inputs, the mean image for
    "caffe"/"torch"), passed explicitly: the tool's default would be the stored mean image.
    """
    import numpy as np

    if choice == "zero":
        from minicnn.tools.ascent import input_shape_of

        return np.zeros(input_shape_of(net), dtype=net.dtype)
    if net.meta.get("mean_image") is not None:
        return None
    if net.meta.get("preprocess") != "unit" or tuple(net.input_shape or ()) != (1, 28, 28):
        return None
    images, _, _ = shipped_samples(10**9, one_per_class=False)
    mean = images.astype(np.float64).mean(axis=0) / 255.0  # (28, 28, 1): the held-out digits
    return np.moveaxis(mean, -1, 0).astype(net.dtype)


def regularizers(net, enabled: bool):
    """The Yosinski et al. (2015, sec. 3) priors, with clipping to the displayable pixel range."""
    if not enabled:
        return ()
    from minicnn.tools.modifiers import Clip, GaussianBlur, Jitter, L2Decay

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
    report.model = str(args.weights)
    start = start_text(net, args.start)
    report.say(f"minicnn classmodel: {args.weights.name}, classes {classes}, {args.steps} steps from {start}")
    say_estimate(report, net, len(classes), args.steps)
    report.methods.append("class model by gradient ascent (Simonyan et al. 2013)")
    if args.regularize:
        report.methods.append("image priors: jitter, L2 decay, blur, clipping (Yosinski et al. 2015)")
    report.settings.update(steps=args.steps, lr=args.lr, l2=args.l2, start=start, regularize=args.regularize)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = mc.class_model(
            net, classes, steps=args.steps, lr=args.lr, l2=args.l2,
            regularizers=regularizers(net, args.regularize), seed=args.seed,
            mean_image=mean_image(net, args.start), progress=not getattr(args, "no_progress", False),
        )  # fmt: skip
    for w in caught:  # the API's advice names its argument; here the option is what the user can change
        if "zero gradient" in str(w.message):
            print(
                f"warning: the class scores have zero gradient at {start} (every ReLU off): the images "
                "do not move; start from a mean image: --start auto (the default) uses the model file's "
                "meta['mean_image'] or, for a 28x28 digit model, the mean shipped digit",
                file=sys.stderr,
            )
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    from minicnn.backend import to_numpy
    from minicnn.render import figures

    scores = to_numpy(net.forward(result.image))
    top = scores.argmax(axis=1)
    labels = [f"{names[c]} (top-1: {names[t]})" for c, t in zip(classes, top, strict=True)]
    report.targets = [{"image": f"class model {c}", "index": int(c), "name": names[c]} for c in classes]
    for c, h, t in zip(classes, result.history, top, strict=True):
        report.say(
            f"  class {c} ({names[c]}): objective {h[0]:.3g} -> {h[-1]:.3g}, recognised as {t} ({names[t]})"
        )
        report.numbers[f"class {names[c]} objective"] = float(h[-1])
        report.numbers[f"class {names[c]} recognised as"] = int(t)
    ncols = min(len(classes), 5)
    which = "all" if str(args.target).lower() == "all" else f"class{classes[0]}"
    stem = f"classmodels_{which}" + ("_regularized" if args.regularize else "")
    title = (
        f"class models of {args.weights.name}: ascent on S_c - {args.l2:g} ||I - start||^2, {args.steps} "
        f"steps of {args.lr:g} from {start}"
        + (" with Yosinski et al. priors" if args.regularize else "")
        + "; label: class (class the model assigns)"
    )
    out.png(f"{stem}.png", figures.tile_grid(result.display, labels, ncols=ncols, title=title), title)
    meta = {"model": str(args.weights), "method": "class model", "classes": [int(c) for c in classes],
            "class_names": [names[c] for c in classes], "start": start, "steps": args.steps, "lr": args.lr,
            "l2": args.l2, "regularize": bool(args.regularize)}  # fmt: skip
    arrays = {
        "image": result.image,
        "start": result.info["start"],
        "history": result.history,
        "recognised_as": top,
    }
    out.arrays(f"{stem}.npz", arrays, meta)
    return report


def start_text(net, choice: str) -> str:
    """Where the ascent starts, in words (for the printed line, the figure and the JSON)."""
    from minicnn.tools.ascent import MEAN_SUBTRACTED

    mean_subtracted = net.meta.get("preprocess") in MEAN_SUBTRACTED
    if choice == "zero":
        return "the zero input (the mean image)" if mean_subtracted else "the zero input (black)"
    if net.meta.get("mean_image") is not None:
        return "the model's mean image (meta['mean_image'])"
    if mean_image(net, choice) is not None:
        return "the mean shipped held-out digit"
    if mean_subtracted:
        return "the zero input (the mean image of a mean-subtracted network)"
    return "the zero input (no mean image stored)"


def say_estimate(report, net, classes: int, steps: int) -> None:
    """Print the work before it starts: classes x steps passes of one image, and the time that takes
    at one measured pass (cli/estimate.py); a first run also says that it compiled kernels."""
    from minicnn.cli.estimate import duration, measure_pass

    one = measure_pass(net)
    if one.compiled:
        report.say(f"  compiling kernels, first run only ({duration(one.first)})")
    report.say(
        f"  {classes} classes x {steps} steps = {classes * steps} forward + backward passes of one image, "
        f"about {duration(classes * steps * one.seconds)} at {one.seconds * 1000:.0f} ms a pass (measured)"
        + ("; --target CLASS or --steps N for less" if classes * steps * one.seconds > 60 else "")
    )
