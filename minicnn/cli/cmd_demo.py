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

from minicnn.cli.options import add_preprocess, add_run_options, model_path
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
them). Before the first tool the demo prints its time estimate (each tool's count of forward +
backward passes times one pass measured on the model) and, for inputs of 112 pixels or more, the
shorter settings it takes there (e.g. 8 class-model steps at 224x224); a step that cannot run on the
model (the shipped 84x84 canvases on a model with a dense top) is skipped with the reason. --tools
runs some steps only. Files of an earlier demo in the same folder are replaced.

examples:
  minicnn demo                       # -> minicnn-out/demo/index.html
  minicnn demo --out /tmp/report --device gpu
  minicnn demo --weights vgg16_weights_tf_dim_ordering_tf_kernels.h5 --image photos/ --out vgg16-report
  minicnn demo --tools saliency,occlusion,classmodel
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
    ("equivalence", {}, "The equivalence suite, measured",
     "Per layer of the network: the DeconvNet rule and the gradient rule applied to the "
     "same incoming signal. Convolutions and max-pooling with switches agree to float precision; "
     "ReLU layers differ on exactly the entries predicted from the signal and the forward input. "
     "Then a section per equality proved since, each with its conditions checked on this network "
     "and measured between two separate codes: the engine's DeconvNet and guided rules, the "
     "max-pool switches, Grad-CAM = CAM (GAP networks), LRP-0 = gradient x input, DeepLIFT = "
     "epsilon-LRP, Integrated Gradients = gradient x input, z+ = alpha1-beta0 = excitation backprop "
     "(on the network and on its bias-free copy where biases break the condition), and the "
     "convergence of the modified rules to a class-insensitive map; the summary comes last.",
     "Simonyan et al. 2013, sec. 4; Springenberg et al. 2015; Selvaraju et al. 2017; Ancona et al. "
     "2018; Montavon et al. 2017; Zhang et al. 2016; Sixt et al. 2020."),
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

    from minicnn.io.formats import image_files, model_files

    parser.add_argument(
        "--weights", type=model_path, default=None, metavar="FILE",
        help=f"run every tool on this model file ({model_files()}; default: the shipped digit models, "
        "VGG-style and GAP)",
    )  # fmt: skip
    parser.add_argument(
        "--image", type=Path, default=None, metavar="PATH",
        help=f"an image file or a folder of images ({image_files()}) for every tool (default: the "
        "shipped samples)",
    )  # fmt: skip
    add_preprocess(parser)  # given to every tool that reads images
    parser.add_argument(
        "--tools", default="all", metavar="LIST",
        help=f"comma-separated steps to run, or 'all' (default): {', '.join(s[0] for s in STEPS)}",
    )  # fmt: skip
    add_run_options(parser, "demo")


# options of the shipped-digit demo that would be wrong for another model: dropped with --weights
DIGIT_ONLY = {"occlusion": ("size", "stride"), "topk": ("count",)}

# Large inputs (a side of LARGE pixels or more, e.g. VGG16's 224x224) make every pass hundreds of times
# dearer than on a digit: the optimisation steps run a forward and backward pass of the whole batch per
# step (16 class models, 8 units, every image at 6 layers) and the sanity checks run every method once
# per re-initialised layer: with the digit demo's settings they would outlast all the other steps together.
# There the demo takes fewer steps, the three methods that tell the papers' story (the gradient, guided
# backpropagation, which barely changes when the weights are re-initialised, and Grad-CAM) and the
# cheaper tests; every choice is printed with the option that undoes it.
LARGE = 112
LARGE_OPTIONS = {
    "occlusion": {"stride": 32},  # 6 x 6 positions of the 64-pixel square at 224, not 11 x 11
    "classmodel": {"steps": 8},
    "maximize": {"steps": 10},
    "invert": {"steps": 8},
    "sanity": {"methods": "gradient,guided,grad_cam", "tests": "cascade,class,recovery,pointing"},
}

# The shipped inputs a step reads when --image is not given: (what, shape (C, H, W)); the other steps
# read no image. Every image step reads the held-out digits except localisation, which finds a digit
# on the larger digits-in-clutter canvases (minicnn/cli/inputs.py).
DIGITS = ("the shipped 28x28 one-channel digits", (1, 28, 28))
CANVASES = ("the shipped 84x84 one-channel digits-in-clutter canvases", (1, 84, 84))
SHIPPED_INPUTS = {
    "saliency": DIGITS, "reconstruct": DIGITS, "equivalence": DIGITS, "occlusion": DIGITS, "cam": DIGITS,
    "invert": DIGITS, "topk": DIGITS, "localize": CANVASES, "sanity": DIGITS,
}  # fmt: skip


def natural(path) -> list:
    """Sort key that orders heldout2 before heldout10 (numbers compared as numbers)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


class _DeclaredOptions(argparse.ArgumentParser):
    """An ArgumentParser that keeps the Action every ``add_argument`` returns (its public return
    value), its groups' included, so that a command's declared defaults can be read without parsing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, add_help=False, **kwargs)
        self.declared = []

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        self.declared.append(action)
        return action

    def add_argument_group(self, *args, **kwargs):
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument

        def recorded(*a, **k):
            action = add(*a, **k)
            self.declared.append(action)
            return action

        group.add_argument = recorded
        return group


def command_args(command: str, **options):
    """(the command's ``run``, its arguments): every option at the default the command declares in
    ``add_arguments``, then ``options`` (dest -> value). What the command line would give, built
    directly: no argv is written out and parsed back."""
    module = importlib.import_module(f"minicnn.cli.cmd_{command}")
    parser = _DeclaredOptions(prog=f"minicnn {command}")
    module.add_arguments(parser)
    defaults = {}
    for action in parser.declared:
        value = action.default
        if isinstance(value, str) and action.type is not None:  # argparse converts string defaults
            value = action.type(value)
        defaults[action.dest] = value
    return module.run, argparse.Namespace(**{**defaults, **options})


def flags(options: dict) -> str:
    """``{"size": 12, "out": "x"}`` -> ``"--size 12 --out x"``: the options as the user would type them."""
    return " ".join(f"--{key.replace('_', '-')} {value}" for key, value in options.items())


def chosen_steps(text) -> list[tuple]:
    """--tools 'all' or 'a,b' -> the STEPS entries, in the demo's order (a MinicnnError names the valid
    steps)."""
    names = [s[0] for s in STEPS]
    valid = f"expected 'all' or a comma-separated list of: {', '.join(names)}"
    if text is None or str(text).strip() == "all":
        return list(STEPS)
    wanted = [t.strip() for t in str(text).split(",") if t.strip()]
    for name in wanted:
        if name not in names:
            raise MinicnnError(f"--tools: unknown step {name!r}; {valid}")
    if not wanted:
        raise MinicnnError(f"--tools is empty; {valid}")
    return [s for s in STEPS if s[0] in wanted]


def unfit_reason(command: str, tool_args, net) -> str | None:
    """Why ``command`` cannot run on ``net`` with the shipped inputs, or None: without --image a step
    reads the shipped digits or canvases (SHIPPED_INPUTS), and a network whose input size or channels
    differ (a dense top fixes the size) cannot take them."""
    from pathlib import Path

    if getattr(tool_args, "image", None) is not None or command not in SHIPPED_INPUTS:
        return None
    what, shape = SHIPPED_INPUTS[command]
    try:
        net.shapes(shape)
    except MinicnnError as exc:
        return f"{what} do not fit {Path(tool_args.weights).name} ({exc}); pass --image with your own images"
    return None


def image_count(command: str, tool_args, images: int | None) -> int:
    """The images a step reads: the --image files, else the shipped samples it takes by default."""
    from minicnn.cli.inputs import DEFAULT_SAMPLES

    if images is not None:
        return images
    if command in ("topk", "localize", "sanity"):
        return int(tool_args.count)
    return DEFAULT_SAMPLES


def passes(command: str, tool_args, net, n: int) -> float:
    """A step's cost in forward + backward passes of one image (the unit of cli/estimate.py), n the
    images it reads. Counted from what each tool runs with ``tool_args``; the passes per image of
    equivalence and the quarter pass per occluder position of incremental occlusion were measured
    (on VGG16)."""
    from minicnn.cli.layer_choice import feature_layer

    steps = getattr(tool_args, "steps", 0)
    if command in ("saliency", "cam", "localize"):
        return n  # one forward and one backward pass per image
    if command == "reconstruct":
        return 2 * n  # one forward, three backward rules
    if command == "equivalence":  # every section: about 64 passes of one image on VGG16
        return 64 * n
    if command == "occlusion":  # an incremental forward pass per occluder position, about 1/4 pass
        from minicnn.tools.occlusion import default_occluder, grid_positions

        height = int(net.input_shape[1])
        size, stride = default_occluder(height)
        size, stride = tool_args.size or size, tool_args.stride or stride
        return n * len(grid_positions(height, size, stride)) ** 2 / 4
    if command == "classmodel":  # a pass per class and step; 'all' is every class, at most 16
        classes = min(16, net.shapes()[-1][0]) if str(tool_args.target).lower() == "all" else 1
        return classes * steps
    if command == "maximize":  # a pass per unit, start and step; by default the layer's first 8 units
        layer = tool_args.layer or feature_layer(net)
        units = len(tool_args.units) if tool_args.units else min(8, net.shapes()[net.index(layer)][0])
        return units * tool_args.starts * steps
    if command == "invert":  # a pass per image, layer and step, each layer's pass counted whole
        from minicnn.cli.cmd_invert import default_layers

        return n * (1 if tool_args.layer else len(default_layers(net))) * steps
    if command == "topk":
        return n + tool_args.k * 4  # the images, then k projections for each of 4 feature maps
    if command == "sanity":
        return n * sanity_maps(tool_args, net)
    return n


def sanity_maps(tool_args, net) -> int:
    """Passes per image of the sanity checks: each method's map (SmoothGrad's samples each a pass) once
    per re-initialised layer in the cascade and independent tests, per top class in the class test,
    twice in recovery, random logit, efficient MPRT and with the permuted network, once per noise
    sample and step in smooth MPRT (Integrated Gradients: one pass per step). The pointing game runs
    on the shipped GAP digit model, whose passes cost next to nothing."""
    from minicnn.tools import methods as registry
    from minicnn.tools.sanity import check_layers
    from minicnn.tools.sanity_methods import SMOOTHGRAD_SAMPLES, available_methods, method_names
    from minicnn.tools.sanity_suite import SUITE_SMOOTH_SAMPLES, TESTS

    def chosen(text, every):
        return list(every) if str(text).strip() == "all" else [t.strip() for t in str(text).split(",")]

    names = (
        available_methods(net) if str(tool_args.methods).strip() == "all" else method_names(tool_args.methods)
    )
    maps = sum(
        SMOOTHGRAD_SAMPLES if m == "smoothgrad" else registry.get(m).options.get("steps", 1) for m in names
    )
    layers = len(check_layers(net, tool_args.layers))
    per_test = {"cascade": layers + 1, "independent": layers, "class": 3, "recovery": 2, "data": 2,
                "random_logit": 2, "efficient_mprt": 2,
                "smooth_mprt": SUITE_SMOOTH_SAMPLES * (layers + 1)}  # fmt: skip
    return maps * sum(per_test.get(t, 0) for t in chosen(tool_args.tests, TESTS))


def run(args) -> Report:
    from tqdm import tqdm

    from minicnn.cli.estimate import duration
    from minicnn.io.atomic import atomic_path
    from minicnn.render.html import Section, write_index

    steps = chosen_steps(getattr(args, "tools", "all"))  # before anything is loaded
    out = open_output(args, "demo")
    report = out.report
    if args.device == "gpu":  # fail once, in one line (a MinicnnError), rather than once per tool
        from minicnn.backend import cupy_module

        cupy_module()
    weights, image = getattr(args, "weights", None), getattr(args, "image", None)
    quiet = getattr(args, "no_progress", False)
    if image is not None and not image.exists():
        raise MinicnnError(f"--image {image} not found (expected a file or a folder)")
    users = (("weights", weights), ("image", image), ("preprocess", getattr(args, "preprocess", None)))
    own = {k: v for k, v in users if v is not None}
    plan = _plan(steps, own, args, report)
    sections, failed, skipped, log = [], [], {}, []
    start = time.perf_counter()
    bar = tqdm(plan, desc="minicnn demo", unit="tool", disable=quiet)
    for command, given, (title, text, paper), reason in bar:
        bar.set_postfix_str(command)
        tool, _ = command_args(command)
        section = Section(title, f"minicnn {command} {flags(given)}".strip(), text, paper)
        sections.append(section)
        if reason is not None:
            skipped[command] = reason
            section.note = f"skipped: {reason}"
            log.append(f"$ minicnn {command} {flags(given)}\nskipped: {reason}\n")
            continue
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
        report.numbers[f"{command} seconds"] = seconds
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
    if skipped:
        intro += f" Skipped (they cannot run on this model): {', '.join(skipped)}; each section says why."
    index = write_index(out.folder, "minicnn demo", intro, sections)
    report.paths += [log_path, index]
    for command in failed:
        report.say(f"minicnn demo: {command} failed (see {log_path})")
    ran = len(plan) - len(failed) - len(skipped)
    report.say(
        f"minicnn demo: {ran} tools in {duration(total)}" + (f", {len(skipped)} skipped" if skipped else "")
    )
    report.say(f"minicnn demo: open {index.resolve()}")
    report.numbers.update(tools=ran, skipped=len(skipped), seconds=total)
    report.settings["skipped"] = dict(skipped)
    report.exit_code = 1 if failed else 0
    return report


def _plan(steps, own: dict, args, report) -> list[tuple]:
    """Per step: (command, its options (dest -> value), (title, text, paper), why it is skipped or
    None). Loads each model the steps use once, says which steps cannot run and why, and prints the
    time estimate (cli/estimate.py) and the step counts chosen for large inputs, before any tool
    runs."""
    from pathlib import Path

    from minicnn.cli.estimate import duration, measure_pass
    from minicnn.cli.inputs import image_files
    from minicnn.cli.loading import load_network

    images = len(image_files(own["image"])) if "image" in own else None
    nets, units, plan, costs = {}, {}, [], []
    for command, options, title, text, paper in steps:
        if "weights" in own:
            options = {k: v for k, v in options.items() if k not in DIGIT_ONLY.get(command, ())}
        _, tool_args = command_args(command)
        given = {k: v for k, v in {**own, **options}.items() if hasattr(tool_args, k)}
        _, tool_args = command_args(command, **given)
        path = Path(tool_args.weights)
        if path not in nets:
            nets[path] = load_network(path, args.device)
        net = nets[path]
        size = tuple(net.input_shape or (0, 0, 0))[1:]
        if command in LARGE_OPTIONS and max(size) >= LARGE:
            given.update(LARGE_OPTIONS[command])
            _, tool_args = command_args(command, **given)
            report.say(
                f"minicnn demo: {command} with {flags(LARGE_OPTIONS[command])} for {path.name}'s "
                f"{size[0]}x{size[1]} inputs (the command's defaults: minicnn {command} --weights ...)"
            )
        reason = unfit_reason(command, tool_args, net)
        if reason is not None:
            report.say(f"minicnn demo: {command} skipped: {reason}")
        else:
            if path not in units:
                units[path] = measure_pass(net)
                if units[path].compiled:
                    report.say(
                        f"minicnn demo: compiling kernels, first run only ({duration(units[path].first)})"
                    )
            n = image_count(command, tool_args, images)
            costs.append((command, passes(command, tool_args, net, n) * units[path].seconds))
        plan.append((command, given, (title, text, paper), reason))
    if costs:
        total = sum(c for _, c in costs)
        each = ", ".join(f"{c} {duration(t)}" for c, t in costs)
        per = "; ".join(f"{p.name} {units[p].seconds * 1000:.0f} ms" for p in units)
        # loading, compiling and drawing are not passes: on a small network they are most of the run
        rest = "most of the time on a network this small" if total < 60 else "seconds per tool"
        report.say(f"minicnn demo: estimated {duration(total)} ({each}): one forward + backward pass of "
                   f"one image measured ({per}) times each tool's count of passes; loading and drawing "
                   f"add {rest}")  # fmt: skip
        report.numbers["estimated seconds"] = total
    return plan
