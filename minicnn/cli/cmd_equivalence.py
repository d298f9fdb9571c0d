"""``minicnn equivalence``: the DeconvNet / gradient equivalence table, measured (Simonyan et al. 2013)."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.context import prepare
from minicnn.cli.inputs import display_signal
from minicnn.cli.options import add_common
from minicnn.cli.report import Report

HELP = "equivalence: DeconvNet vs gradient, layer by layer, measured on real inputs"
EPILOG = """\
For every layer of the network, the DeconvNet rule and the gradient rule are applied to the same
incoming signal and compared (relative max difference, fraction of entries that differ): conv,
max-pool with switches, average pooling and dense layers agree to float precision, ReLU layers
differ. An entry differs when the two rules differ by more than --tol times the layer's largest
value (default: 1e-5 in float32, 1e-6 in float64, the engine's accuracy per layer). Printed as the
table of Simonyan et al. (2013, sec. 4), written as equivalence.txt and equivalence.csv, with the
three whole-network class reconstructions of each image side by side.

examples:
  minicnn equivalence
  minicnn equivalence --weights vgg16_weights_tf_dim_ordering_tf_kernels.h5 --image photo.jpg
  minicnn equivalence --weights vgg16.pth --image photo.jpg --tol 1e-4
"""


def add_arguments(parser) -> None:
    from minicnn.cli.options import positive_float

    add_common(parser)
    parser.add_argument(
        "--tol", type=positive_float, default=None, metavar="T",
        help="an entry differs above T times the layer's largest value (default: by dtype, 1e-5 float32)",
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


def run(args) -> Report:
    import minicnn as mc
    from minicnn.render import figures

    tol = check_tol(getattr(args, "tol", None))
    ctx = prepare(args, "equivalence")
    result = mc.equivalence(
        ctx.net,
        ctx.inputs.x,
        ctx.targets,
        tol=tol,
        record=ctx.record,
        progress=not getattr(args, "no_progress", False),
    )
    ctx.report.settings["tol"] = result.tol
    table = result.table()
    ctx.report.say(table)
    ctx.report.tables["equivalence"] = table + "\n"  # as written to equivalence.txt
    for r in result.rows:
        ctx.report.numbers[f"{r.name} max rel diff"] = float(r.rel_diff)
    for p in result.pairs:
        ctx.report.numbers[f"{p.a} vs {p.b} max rel diff"] = float(p.rel_diff)
    ctx.out.text("equivalence.txt", ctx.report.tables["equivalence"])
    ctx.out.text("equivalence.csv", csv_text(result))
    ctx.report.methods.append("DeconvNet vs gradient, layer by layer (Simonyan et al. 2013, sec. 4)")
    for i in range(len(ctx.inputs.names)):
        panels = {m: display_signal(ctx.net, s[i]) for m, s in result.signals.items()}
        title = f"{ctx.label(i)}: the class score sent back to pixels by each rule, {Path(args.weights).name}"
        stem = ctx.stem(i, "modes")
        ctx.out.png(f"{stem}.png", figures.reconstruction_figure(ctx.inputs.display[i], panels, title), title)
        ctx.out.arrays(
            f"{stem}.npz", {m: s[i] for m, s in result.signals.items()}, ctx.meta(i, "equivalence")
        )
    return ctx.report
