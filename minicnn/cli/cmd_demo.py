"""``minicnn demo``: every tool on the shipped models and samples (or on the user's model and
images), gathered in one index.html."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import time
import traceback

from minicnn.cli.options import add_preprocess, add_run_options
from minicnn.cli.output import open_output
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "run every tool on the shipped models and write an HTML report (the quick start)"
EPILOG = """\
Runs saliency, reconstructions, the equivalence table, occlusion, CAM, class models, activation
maximisation, inversion, top-9 projections, localisation and the sanity checks on the shipped digit
models and sample inputs, with step counts chosen to finish in seconds on two CPU cores, and writes
<out>/index.html with every picture, the measured equivalence table and the papers behind them.
--weights and --image build the same report for your own model and images (every tool then uses
them; expect minutes for a VGG16 on a CPU, with progress bars). Files of an earlier demo in the same
folder are replaced.

examples:
  minicnn demo                       # -> minicnn-out/demo/index.html
  minicnn demo --out /tmp/report --device gpu
  minicnn demo --weights vgg16_weights_tf_dim_ordering_tf_kernels.h5 --image photos/ --out vgg16-report
"""

# (command, options changed from the command's defaults (dest -> value), title, what the pictures show,
# paper)
STEPS = (
    ("saliency", {}, "Saliency maps",
     "For each input image (by default a held-out digit): the input, max over channels of |dS_c/dI| "
     "for the predicted class (bright = pixels whose change moves the class score most), and the "
     "map laid over the image.",
     "Simonyan, Vedaldi & Zisserman 2013, Deep Inside Convolutional Networks, sec. 3, fig. 2."),
    ("reconstruct", {}, "Reconstructions in three modes",
     "The strongest activation of the last convolutional block sent back to pixels by the "
     "DeconvNet rule, the gradient and guided backpropagation, zero-centred (grey = 0); the modes "
     "differ only at the ReLUs.",
     "Zeiler & Fergus 2013, sec. 2; Simonyan et al. 2013, sec. 4; Springenberg et al. 2015."),
    ("equivalence", {}, "The DeconvNet / gradient equivalence, measured",
     "Per layer of the network: the DeconvNet rule and the gradient rule applied to the "
     "same incoming signal. Convolutions and max-pooling with switches agree to float precision; "
     "ReLU layers differ, by the amounts measured here on real inputs.",
     "Simonyan et al. 2013, sec. 4 (the table of forward pass, DeconvNet and gradient)."),
    ("occlusion", {"size": 12, "stride": 2}, "Occlusion sensitivity",
     "A grey square slides over the image; per position, the probability of the predicted class "
     "and the most probable class, and per pixel the mean drop of the class score over the windows "
     "covering it. The probability falls where the square hides what makes the class.",
     "Zeiler & Fergus 2013, sec. 4.2, fig. 7."),
    ("cam", {}, "Class activation maps",
     "CAM, for a network that ends in global average pooling and one dense layer (by default the "
     "shipped GAP digit model): the dense weights of the class applied to the last feature maps; "
     "and Grad-CAM, for any network (the maps weighted by the mean gradient "
     "of the class score), upsampled and laid over the image. On a GAP network Grad-CAM is CAM's "
     "positive part up to scale; the figures say so where it holds.",
     "Zhou et al. 2016, Learning Deep Features for Discriminative Localization; "
     "Selvaraju et al. 2017, Grad-CAM."),
    ("classmodel", {"steps": 40}, "Class models",
     "For each class, the image found by gradient ascent on the unnormalised class score with an "
     "L2 penalty, starting from the model's mean image (meta['mean_image']: the mean held-out digit "
     "for the shipped models; the paper's zero start is --start zero); the label gives the class "
     "the network itself assigns to the image.",
     "Simonyan et al. 2013, sec. 2, fig. 1."),
    ("maximize", {"steps": 30}, "Activation maximisation",
     "Inputs of fixed norm that maximise single feature maps of a hidden layer, from random "
     "starts.",
     "Erhan, Bengio, Courville & Vincent 2009, Visualizing Higher-Layer Features, sec. 3."),
    ("invert", {"steps": 40}, "Feature inversion",
     "Images reconstructed only from a layer's representation of an input image, by minimising "
     "the relative feature error with total-variation and alpha-norm priors.",
     "Mahendran & Vedaldi 2015, Understanding Deep Image Representations by Inverting Them."),
    ("topk", {"count": 100}, "Top-9 projections",
     "For a few feature maps: the nine strongest activations over the images (by default held-out "
     "digits), each projected "
     "back to pixels by the DeconvNet (left) beside the input patch under its receptive field "
     "(right).",
     "Zeiler & Fergus 2013, sec. 2.1, fig. 2."),
    ("localize", {}, "Weakly supervised localisation",
     "By default digits in clutter and the GAP model: saliency, foreground and background seeds from its "
     "quantiles, a graph cut, and the box of the largest component (green; truth in blue).",
     "Simonyan et al. 2013, sec. 3.1, fig. 3; graph cut by PyMaxflow (Boykov & Kolmogorov 2004)."),
    ("sanity", {"count": 2, "pointing_count": 20}, "Sanity checks: what each saliency map shows",
     "Each method x each test, measured on the shipped models: the similarity of a method's maps "
     "before and after re-initialising the learned layers from the top down (cascade) or one at a "
     "time (independent), with a network trained on permuted labels (data), between the maps of an "
     "image's top classes (class), with the image itself on the trained / a random network "
     "(recovery), and the pointing game on the digits in clutter (GAP model). Low similarity in the "
     "randomisation columns means the map depends on what the network learned. The papers' claims "
     "are printed under the table; the figures show both tests, one row per method, one column per step.",
     "Adebayo et al. 2018, Sanity Checks for Saliency Maps, figs. 2, 4, 5; Nie, Zhang & Patel 2018; "
     "Mahendran & Vedaldi 2016; Zhang et al. 2016 (pointing game, scored as TorchRay)."),
)  # fmt: skip


def add_arguments(parser) -> None:
    from pathlib import Path

    from minicnn.io.formats import model_files

    parser.add_argument(
        "--weights", type=Path, default=None, metavar="FILE",
        help=f"run every tool on this model file ({model_files()}; default: the shipped digit models, "
        "VGG-style and GAP)",
    )  # fmt: skip
    parser.add_argument(
        "--image", type=Path, default=None, metavar="PATH",
        help="an image file or a folder of images for every tool (default: the shipped samples)",
    )  # fmt: skip
    add_preprocess(parser)  # given to every tool that reads images
    add_run_options(parser, "demo")


# options of the shipped-digit demo that would be wrong for another model: dropped with --weights
DIGIT_ONLY = {"occlusion": ("size", "stride"), "topk": ("count",)}


def natural(path) -> list:
    """Sort key that orders heldout2 before heldout10 (numbers compared as numbers)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def command_args(command: str, **options):
    """(the command's ``run``, its arguments): every option at the default the command declares in
    ``add_arguments``, then ``options`` (dest -> value). What the command line would give, built
    directly: no argv is written out and parsed back."""
    module = importlib.import_module(f"minicnn.cli.cmd_{command}")
    parser = argparse.ArgumentParser(prog=f"minicnn {command}")
    module.add_arguments(parser)
    defaults = {}
    for action in parser._actions:  # argparse's list of declared options (no public accessor)
        if action.dest == "help":
            continue
        value = action.default
        if isinstance(value, str) and action.type is not None:  # argparse converts string defaults
            value = action.type(value)
        defaults[action.dest] = value
    return module.run, argparse.Namespace(**{**defaults, **options})


def flags(options: dict) -> str:
    """``{"size": 12, "out": "x"}`` -> ``"--size 12 --out x"``: the options as the user would type them."""
    return " ".join(f"--{key.replace('_', '-')} {value}" for key, value in options.items())


def run(args) -> Report:
    from tqdm import tqdm

    from minicnn.io.atomic import atomic_path
    from minicnn.render.html import Section, write_index

    out = open_output(args, "demo")
    report = out.report
    if args.device == "gpu":  # fail once, in one line, rather than once per tool
        from minicnn.backend import cupy_module

        try:
            cupy_module()
        except RuntimeError as exc:
            raise MinicnnError(f"--device gpu: {exc}") from None
    weights, image = getattr(args, "weights", None), getattr(args, "image", None)
    quiet = getattr(args, "no_progress", False)
    for path, option in ((weights, "--weights"), (image, "--image")):
        if path is not None and not path.exists():
            raise MinicnnError(f"{option} {path} not found (expected a file or a folder)")
    users = (("weights", weights), ("image", image), ("preprocess", getattr(args, "preprocess", None)))
    own = {k: v for k, v in users if v is not None}
    sections, failed, log = [], [], []
    start = time.perf_counter()
    bar = tqdm(STEPS, desc="minicnn demo", unit="tool", disable=quiet)
    for command, options, title, text, paper in bar:
        bar.set_postfix_str(command)
        if weights is not None:
            options = {k: v for k, v in options.items() if k not in DIGIT_ONLY.get(command, ())}
        tool, tool_args = command_args(command)
        given = {k: v for k, v in {**own, **options}.items() if hasattr(tool_args, k)}
        section = Section(title, f"minicnn {command} {flags(given)}".strip(), text, paper)
        sections.append(section)
        # the demo's folder is its own: a rerun replaces the files of the previous demo
        shared = {"out": out.folder / command, "device": args.device, "seed": args.seed, "overwrite": True,
                  "no_progress": quiet}  # fmt: skip
        tool, tool_args = command_args(command, **given, **shared)
        buffer = io.StringIO()
        t0 = time.perf_counter()
        try:
            with contextlib.redirect_stdout(buffer):
                made = tool(tool_args)
        except Exception as exc:  # one broken tool must not hide the others: log it, go on
            detail = traceback.format_exc() if not isinstance(exc, MinicnnError) else ""
            made, buffer = None, io.StringIO(buffer.getvalue() + f"{detail}error: {exc}\n")
        seconds = time.perf_counter() - t0
        typed = {k: v for k, v in shared.items() if k in ("out", "device", "seed")}
        log.append(f"$ minicnn {command} {flags({**given, **typed})}\n{buffer.getvalue()}({seconds:.1f} s)\n")
        if made is None or made.exit_code != 0:
            failed.append(command)
            section.note = f"failed: {buffer.getvalue().strip().splitlines()[-1]}"
            continue
        report.paths += made.paths
        figures = sorted(((p.relative_to(out.folder), c) for c, p in made.figures.items()), key=natural)
        section.images = [p for p, _ in figures]
        section.captions = [c for _, c in figures]
        tables = [t for t in made.tables.values() if isinstance(t, str)]  # preformatted text
        if tables:
            section.table = "\n".join(tables)
    total = time.perf_counter() - start
    out.folder.mkdir(parents=True, exist_ok=True)
    log_path = out.folder / "log.txt"
    with atomic_path(log_path) as tmp:
        tmp.write_text("\n".join(log), encoding="utf-8")
    on = "the shipped digit models and samples"
    if own:
        on = " and ".join(f"{k} {v}" for k, v in (("model", weights), ("images", image)) if v is not None)
        on += " (the section texts describe the tools; they were written for the shipped digits)"
    intro = (
        f"Every minicnn tool on {on}, made by 'minicnn demo' in {total:.0f} s on {args.device}. Each "
        "section names the command that reproduces it (see log.txt for the printed output, including "
        "the top-5 predictions and the class index each map was made for). Each picture says above it "
        "what it shows: model, target class with its index, layer or unit, and method."
    )
    index = write_index(out.folder, "minicnn demo", intro, sections)
    report.paths += [log_path, index]
    for command in failed:
        report.say(f"minicnn demo: {command} failed (see {log_path})")
    report.say(f"minicnn demo: {len(STEPS) - len(failed)} tools in {total:.1f} s")
    report.say(f"minicnn demo: open {index.resolve()}")
    report.numbers.update(tools=len(STEPS) - len(failed), seconds=total)
    report.exit_code = 1 if failed else 0
    return report
