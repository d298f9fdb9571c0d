"""``minicnn equivalence``: the equivalence suite, measured: the DeconvNet / gradient table of Simonyan
et al. (2013) and every equality proved since between attribution methods, each between two codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minicnn.cli.context import prepare
from minicnn.cli.inputs import display_signal
from minicnn.cli.options import add_common
from minicnn.cli.report import Report

HELP = "equivalence: the proved equalities between attribution methods, measured layer by layer"
EPILOG = """\
Sections (--section NAME, repeatable; default all):
  simonyan     DeconvNet vs gradient rule, layer by layer (Simonyan et al. 2013, sec. 4); ReLU rows
               with the predicted and measured count of differing entries
  deconvnet    the engine's deconvnet rule vs the DeconvNet built apart (Zeiler & Fergus 2013)
  guided       the engine's guided rule vs DeconvNet rectification x forward mask (Springenberg 2015)
  switches     every max-pool switch vs an independent argmax of the recorded input
  cam          Grad-CAM vs CAM on a network ending in global average pooling (Selvaraju et al. 2017)
  lrp0         LRP-0 vs gradient x input (Ancona et al. 2018)
  deeplift     DeepLIFT-Rescale, zero reference, vs epsilon-LRP (Ancona et al. 2018)
  ig           Integrated Gradients, zero baseline, vs gradient x input
  zplus        LRP-z+ vs alpha1-beta0 vs excitation backprop (Montavon et al. 2017; Zhang et al. 2016)
  convergence  cosine of two classes' signals per layer, per rule (Sixt et al. 2020)
Each section states its theorem and checks its conditions (ReLU and max-pool, biases, ...) on the
network, by measurement. A row holds when its gap, max |A - B| / max(|A|, |B|), is within the bound
of the dtype (1e-12 with --float64, 1e-5 in float32); where a condition fails the row names it and
shows the measured gap, and a row on the network's bias-free copy measures the equality where it
must hold. Printed, and written as equivalence.txt, equivalence.csv (the Simonyan table) and
equivalence_sections.csv; --json has every row. In the Simonyan table an entry differs when the two
rules differ by more than --tol times the layer's largest value.

examples:
  minicnn equivalence
  minicnn equivalence --float64 --weights vgg16.pth --image photo.jpg
  minicnn equivalence --section lrp0 --section ig --weights mnist_gap --json
  minicnn equivalence --input x.npy --weights model.onnx --float64
"""


def add_arguments(parser) -> None:
    from minicnn.cli.options import existing_file, positive_float

    add_common(parser)
    parser.add_argument(
        "--tol", type=positive_float, default=None, metavar="T",
        help="an entry differs above T times the layer's largest value (default: by dtype, 1e-5 float32)",
    )  # fmt: skip
    parser.add_argument(
        "--float64", action="store_true",
        help="run the network in float64: each equality then holds to 1e-12 where its conditions hold",
    )  # fmt: skip
    parser.add_argument(
        "--input", type=existing_file, default=None, metavar="FILE",
        help="network input (N, C, H, W) or (C, H, W) as .npy, already preprocessed (instead of --image)",
    )  # fmt: skip
    parser.add_argument(
        "--section", action="append", default=None, metavar="NAME",
        help="measure only this section (repeatable): simonyan, deconvnet, guided, switches, cam, lrp0, "
        "deeplift, ig, zplus, convergence (default: all)",
    )  # fmt: skip


def check_tol(tol):
    """--tol: None (the dtype's default) or a finite number in (0, 1); else one MinicnnError."""
    import math

    from minicnn.errors import MinicnnError

    if tol is not None and not (math.isfinite(tol) and 0 < tol < 1):
        raise MinicnnError(f"--tol must be a number between 0 and 1 (exclusive), got {tol:g}")
    return tol


def csv_text(result) -> str:
    """The per-layer rows and the whole-network pairs as CSV (data for a figure)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["layer", "kind", "forward", "deconvnet", "gradient", "max_rel_diff", "fraction_differing"]
    )
    for r in result.rows:
        writer.writerow(
            [r.name, r.kind, r.forward, r.deconvnet, r.gradient, f"{r.rel_diff:.6e}", f"{r.frac_differ:.6f}"]
        )
    for p in result.pairs:
        writer.writerow(
            [f"{p.a} vs {p.b}", "network", "", "", "", f"{p.rel_diff:.6e}", f"{p.frac_differ:.6f}"]
        )
    return buffer.getvalue()


def sections_csv(result) -> str:
    """Every section's rows as CSV: section, row, the two sides, gap, bound, expected, measured,
    the failing condition and the verdict."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["section", "row", "left", "right", "gap", "bound", "expected", "measured", "failed", "verdict"]
    )
    for section in result.sections:
        for r in section.rows:
            cells = [r.gap, r.bound, r.expected, r.measured]
            writer.writerow(
                [section.name, r.name, r.left, r.right, *("" if v is None else f"{v:.6e}" for v in cells),
                 r.failed, r.verdict]
            )  # fmt: skip
    return buffer.getvalue()


def read_input(path: Path, net):
    """--input: a float .npy of network input, (N, C, H, W) or (C, H, W) -> (x of net.dtype on the
    net's device, one name per image); else one MinicnnError naming the file."""
    from minicnn.errors import MinicnnError

    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise MinicnnError(f"--input {path}: not a readable .npy file ({exc})") from None
    if not isinstance(x, np.ndarray) or x.ndim not in (3, 4) or not np.issubdtype(x.dtype, np.floating):
        raise MinicnnError(f"--input {path}: expected a float (N, C, H, W) or (C, H, W) array")
    if not np.all(np.isfinite(x)):
        raise MinicnnError(f"--input {path}: the array holds NaN or infinite values")
    x = net.xp.asarray(np.ascontiguousarray(x if x.ndim == 4 else x[None], dtype=net.dtype))
    names = [f"{path.stem}_{i}" for i in range(len(x))] if len(x) > 1 else [path.stem]
    return x, names


def prepare_input_file(args):
    """The Context of --input: the network (float64 with --float64), the array as the batch, one
    forward pass, the targets; no display images (the array is network input)."""
    from minicnn.backend import to_numpy
    from minicnn.cli.classes import parse_target, target_entries, target_lines, top5_lines
    from minicnn.cli.context import Context
    from minicnn.cli.inputs import Inputs
    from minicnn.cli.loading import load_network, move_network
    from minicnn.cli.output import open_output
    from minicnn.errors import MinicnnError
    from minicnn.tools.targets import resolve_targets

    out = open_output(args, "equivalence")
    net = load_network(args.weights, "cpu")
    if args.float64:
        net.astype(np.float64)  # on the host, before the move: astype keeps the device
    net = move_network(net, args.device)
    target = parse_target(net, args.target)
    if target == "label":
        raise MinicnnError("--target label needs the shipped samples (their true classes); with --input "
                           "pass a class index or name")  # fmt: skip
    x, names = read_input(args.input, net)
    record = net.run(x)
    scores = to_numpy(record.output())
    targets = resolve_targets(target, scores)
    report = out.report
    report.model, report.inputs = str(args.weights), list(names)
    report.say(
        f"minicnn equivalence: {Path(args.weights).name}, {len(names)} input(s) from {args.input.name}"
    )
    for line in top5_lines(net, scores, names):
        report.say(line)
    report.targets = target_entries(net, names, targets)
    for line in target_lines(report.targets, "predicted class" if target == "predicted" else "--target"):
        report.say(line)
    report.numbers["images"] = len(names)
    return Context(net, Inputs(x, None, names), record, scores, targets, out)


def prepare_float64(ctx):
    """The Context in float64: the network converted in place, the batch and its forward pass again
    (the targets stay those of the float32 pass that printed them)."""
    ctx.net.astype(np.float64)
    ctx.inputs.x = ctx.inputs.x.astype(np.float64)
    ctx.record = ctx.net.run(ctx.inputs.x)
    return ctx


def run(args) -> Report:
    import minicnn as mc
    from minicnn.errors import MinicnnError
    from minicnn.render import figures
    from minicnn.tools.equivalence import check_sections

    tol = check_tol(getattr(args, "tol", None))
    sections = check_sections(args.section)  # a misspelt name fails before the model is read
    if args.input is not None and args.image is not None:
        raise MinicnnError("give --image or --input, not both")
    if args.input is not None:
        ctx = prepare_input_file(args)
    else:
        ctx = prepare(args, "equivalence")
        if args.float64:
            prepare_float64(ctx)
    result = mc.equivalence(
        ctx.net,
        ctx.inputs.x,
        ctx.targets,
        tol=tol,
        record=ctx.record,
        progress=not getattr(args, "no_progress", False),
        sections=sections,
    )
    report = ctx.report
    report.settings.update(
        {"tol": result.tol, "float64": bool(args.float64), "dtype": str(np.dtype(ctx.net.dtype)),
         "sections": list(sections), "input": str(args.input) if args.input is not None else None}
    )  # fmt: skip
    table = result.table()
    failing = result.failures()
    summary = (
        f"{len(failing)} row(s) FAIL where their conditions hold: {', '.join(failing)}"
        if failing
        else "every equality holds where its conditions hold"
    )
    report.say(table)
    report.say("")
    report.say(result.summary())
    report.say(summary)
    report.tables["equivalence"] = table + "\n"  # as written to equivalence.txt
    report.tables["sections"] = [s.records() for s in result.sections]
    report.tables["summary"] = result.summary() + "\n"
    for r in result.rows:
        report.numbers[f"{r.name} max rel diff"] = float(r.rel_diff)
    for p in result.pairs:
        report.numbers[f"{p.a} vs {p.b} max rel diff"] = float(p.rel_diff)
    report.numbers["failing rows"] = len(failing)
    ctx.out.text("equivalence.txt", report.tables["equivalence"])
    if result.rows:
        ctx.out.text("equivalence.csv", csv_text(result))
    ctx.out.text("equivalence_sections.csv", sections_csv(result))
    report.methods.append("the equivalence suite: DeconvNet vs gradient (Simonyan et al. 2013, sec. 4) and "
                          + ", ".join(s.title for s in result.sections if s.name != "simonyan"))  # fmt: skip
    for i in range(len(ctx.inputs.names)):
        if not result.signals:
            break
        panels = {m: display_signal(ctx.net, s[i]) for m, s in result.signals.items()}
        stem = ctx.stem(i, "modes")
        if ctx.inputs.display is not None:  # --input is network input: there is no picture to show
            title = (
                f"{ctx.label(i)}: the class score sent back to pixels by each rule, {Path(args.weights).name}"
            )
            ctx.out.png(
                f"{stem}.png", figures.reconstruction_figure(ctx.inputs.display[i], panels, title), title
            )
        ctx.out.arrays(
            f"{stem}.npz", {m: s[i] for m, s in result.signals.items()}, ctx.meta(i, "equivalence")
        )
    return report
