"""``minicnn demo``: every tool on the shipped models and samples, gathered in one index.html."""

from __future__ import annotations

import contextlib
import io
import re
import time
import traceback

from minicnn.cli import common

HELP = "run every tool on the shipped models and write an HTML report (the quick start)"
EPILOG = """\
Runs saliency, reconstructions, the equivalence table, occlusion, CAM, class models, activation
maximisation, inversion, top-9 projections and localisation on the shipped digit models and sample
inputs, with step counts chosen to finish in about a minute on two CPU cores, and writes
<out>/index.html with every picture, the measured equivalence table and the papers behind them.

examples:
  minicnn demo                       # -> minicnn-out/demo/index.html
  minicnn demo --out /tmp/report --device gpu
"""

# (command, extra arguments, title, what the pictures show, paper)
STEPS = (
    ("saliency", [], "Saliency maps",
     "For each held-out digit: the input, max over channels of |dS_c/dI| for the predicted class "
     "(bright = pixels whose change moves the class score most), and the map laid over the digit.",
     "Simonyan, Vedaldi & Zisserman 2013, Deep Inside Convolutional Networks, sec. 3, fig. 2."),
    ("reconstruct", [], "Reconstructions in three modes",
     "The strongest activation of the last convolutional block sent back to pixels by the "
     "DeconvNet rule, the gradient and guided backpropagation, zero-centred (grey = 0); the modes "
     "differ only at the ReLUs.",
     "Zeiler & Fergus 2013, sec. 2; Simonyan et al. 2013, sec. 4; Springenberg et al. 2015."),
    ("equivalence", [], "The DeconvNet / gradient equivalence, measured",
     "Per layer of the shipped network: the DeconvNet rule and the gradient rule applied to the "
     "same incoming signal. Convolutions and max-pooling with switches agree to float precision; "
     "ReLU layers differ, by the amounts measured here on real digits.",
     "Simonyan et al. 2013, sec. 4 (the table of forward pass, DeconvNet and gradient)."),
    ("occlusion", ["--size", "12", "--stride", "2"], "Occlusion sensitivity",
     "A grey square slides over the digit; per position, the probability of the predicted class "
     "and the most probable class, and per pixel the mean drop of the class score over the windows "
     "covering it. The probability falls where the square hides the strokes that make the digit.",
     "Zeiler & Fergus 2013, sec. 4.2, fig. 7."),
    ("cam", [], "Class activation maps",
     "The all-convolutional digit model with global average pooling: CAM (the dense weights of the "
     "class applied to the last feature maps) and Grad-CAM (the maps weighted by the mean gradient "
     "of the class score), upsampled and laid over the digit.",
     "Zhou et al. 2016, Learning Deep Features for Discriminative Localization; "
     "Selvaraju et al. 2017, Grad-CAM."),
    ("classmodel", ["--steps", "40"], "Class models",
     "For each digit class, the image found by gradient ascent on the unnormalised class score "
     "with an L2 penalty, starting from the zero image; the label gives the class the network "
     "itself assigns to the image.",
     "Simonyan et al. 2013, sec. 2, fig. 1."),
    ("maximize", ["--steps", "30"], "Activation maximisation",
     "Inputs of fixed norm that maximise single feature maps of a hidden layer, from random "
     "starts.",
     "Erhan, Bengio, Courville & Vincent 2009, Visualizing Higher-Layer Features, sec. 3."),
    ("invert", ["--steps", "40"], "Feature inversion",
     "Images reconstructed only from a layer's representation of a held-out digit, by minimising "
     "the relative feature error with total-variation and alpha-norm priors.",
     "Mahendran & Vedaldi 2015, Understanding Deep Image Representations by Inverting Them."),
    ("topk", ["--count", "100"], "Top-9 projections",
     "For a few feature maps: the nine strongest activations over held-out digits, each projected "
     "back to pixels by the DeconvNet (left) beside the input patch under its receptive field "
     "(right).",
     "Zeiler & Fergus 2013, sec. 2.1, fig. 2."),
    ("localize", [], "Weakly supervised localisation",
     "Digits in clutter: saliency of the GAP model, foreground and background seeds from its "
     "quantiles, a graph cut, and the box of the largest component (green; truth in blue).",
     "Simonyan et al. 2013, sec. 3.1, fig. 3; graph cut by PyMaxflow (Boykov & Kolmogorov 2004)."),
)  # fmt: skip


def add_arguments(parser) -> None:
    common.add_run_options(parser, "demo")


def natural(path) -> list:
    """Sort key that orders heldout2 before heldout10 (numbers compared as numbers)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def available(command: str, parser) -> bool:
    """True when the subcommand exists (the parser only knows the commands already written)."""
    sub = next(a for a in parser._actions if a.dest == "command")
    return command in sub.choices


def run(args) -> int:
    from tqdm import tqdm

    from minicnn.cli.main import build_parser
    from minicnn.render.html import Section, write_index

    out = common.output(args, "demo")
    if args.device == "gpu":  # fail once, in one line, rather than once per tool
        from minicnn.backend import cupy_module

        try:
            cupy_module()
        except RuntimeError as exc:
            raise common.MinicnnError(f"--device gpu: {exc}") from None
    parser = build_parser()
    sections, failed, log = [], [], []
    start = time.perf_counter()
    bar = tqdm(STEPS, desc="minicnn demo", unit="tool")
    for command, extra, title, text, paper in bar:
        bar.set_postfix_str(command)
        folder = out.folder / command
        shown = f"minicnn {command} {' '.join(extra)}".strip()
        section = Section(title, shown, text, paper)
        sections.append(section)
        if not available(command, parser):
            section.note = "not available in this version"
            continue
        argv = [command, *extra, "--out", str(folder), "--device", args.device]
        argv += ["--seed", str(args.seed)]
        sub_args = parser.parse_args(argv)
        buffer = io.StringIO()
        t0, started = time.perf_counter(), time.time()
        try:
            with contextlib.redirect_stdout(buffer):
                code = int(sub_args.run(sub_args) or 0)
        except Exception as exc:  # one broken tool must not hide the others: log it, go on
            detail = traceback.format_exc() if not isinstance(exc, common.MinicnnError) else ""
            code, buffer = 2, io.StringIO(buffer.getvalue() + f"{detail}error: {exc}\n")
        seconds = time.perf_counter() - t0
        log.append(f"$ minicnn {' '.join(argv)}\n{buffer.getvalue()}({seconds:.1f} s)\n")
        if code != 0:
            failed.append(command)
            section.note = f"failed: {buffer.getvalue().strip().splitlines()[-1]}"
            continue
        # only this run's pictures: an out-folder reused from an older run may hold others
        fresh = [p for p in folder.glob("*.png") if p.stat().st_mtime >= started - 1.0]
        section.images = sorted((p.relative_to(out.folder) for p in fresh), key=natural)
        table = folder / "equivalence.txt"
        if table.is_file():
            section.table = table.read_text(encoding="utf-8")
    total = time.perf_counter() - start
    out.folder.mkdir(parents=True, exist_ok=True)
    log_path = out.folder / "log.txt"
    from minicnn.io.atomic import atomic_path

    with atomic_path(log_path) as tmp:
        tmp.write_text("\n".join(log), encoding="utf-8")
    intro = (
        f"Every minicnn tool on the shipped digit models, made by 'minicnn demo' in {total:.0f} s "
        f"on {args.device}. Each section names the command that reproduces it (see log.txt for "
        "the printed output, including top-5 predictions)."
    )
    index = write_index(out.folder, "minicnn demo", intro, sections)
    for command in failed:
        print(f"minicnn demo: {command} failed (see {log_path})")
    print(f"minicnn demo: {len(STEPS) - len(failed)} tools in {total:.1f} s")
    print(f"minicnn demo: open {index.resolve()}")
    return 1 if failed else 0
