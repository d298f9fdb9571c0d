"""``minicnn sanity``: the sanity checks for saliency maps, as a method x test table (Adebayo et al. 2018)."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.context import prepare
from minicnn.cli.options import add_common
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "sanity checks of saliency methods: randomisation tests, class sensitivity, pointing game"
EPILOG = """\
Asks of each saliency method what its maps really show (Adebayo et al. 2018, "Sanity Checks for
Saliency Maps"): do they change when the learned weights are re-initialised from the top down
(cascading) or one layer at a time (independent), or when the network was trained on permuted
labels? Do they change with the class (Nie et al. 2018)? Do they look like the image even on a
random network (Mahendran & Vedaldi 2016)? Where do they point on the digits-in-clutter canvases
(the pointing game of Zhang et al. 2016, scored as TorchRay, with the GAP model)? Similarities are
Spearman rank correlation (with and without abs), SSIM and HOG correlation (SciPy, scikit-image),
computed under one --protocol: minicnn (default), adebayo (the authors' code: sum_c |a_c| clipped at
the 99th percentile, Gaussian SSIM and 16-px HOG by Spearman on the min-max map) or quantus (Quantus'
MPRT defaults); every table names it. Where more than a quarter of the pixels are zero in either map
(dead ReLUs on a black background), a verdict reads the correlation over the other pixels ("fg").
Writes sanity.txt (every table), one figure per image like the paper's fig. 2 (rows: methods,
columns: randomisation steps), and with --json the numbers on stdout.

methods: every class-explaining method of minicnn's registry: gradient, gradient_x_input, smoothgrad,
         guided, deconvnet, grad_cam, cam (GAP networks), integrated-gradients, excitation,
         contrastive-excitation, guided-grad-cam, lrp-epsilon, lrp-zplus, lrp-alpha1beta0,
         lrp-composite, deeplift; occlusion when named ('all' leaves it out: a pass per position).
tests:   cascade, independent, data, class, recovery, pointing, random_logit (Sixt et al. 2020),
         smooth_mprt and efficient_mprt (Hedstrom et al. 2024).
Per-layer curves (one line per method, the layer names below) are written for the cascade, the
independent test and smooth MPRT (bottom-up).

examples:
  minicnn sanity                                    # shipped VGG-style digit model, every test
  minicnn sanity --methods gradient,guided --tests cascade --json
  minicnn sanity --protocol adebayo --tests cascade,independent
  minicnn sanity --weights weights/mnist_gap.h5     # the GAP model (adds CAM)
"""


def add_arguments(parser) -> None:
    from minicnn.cli.options import positive_int
    from minicnn.io.formats import model_files

    add_common(parser)
    parser.add_argument("--count", type=positive_int, default=4, help="shipped digits used (default 4)")
    parser.add_argument(
        "--methods", default="all", metavar="LIST",
        help="comma-separated methods, or 'all' (every method the network allows; default)",
    )  # fmt: skip
    parser.add_argument(
        "--tests", default="all", metavar="LIST", help="comma-separated tests, or 'all' (default)"
    )
    parser.add_argument(
        "--protocol", default="minicnn", choices=("minicnn", "adebayo", "quantus"),
        help="how two maps are compared (default minicnn; adebayo: the authors' code; quantus: Quantus' MPRT "
        "defaults)",
    )  # fmt: skip
    parser.add_argument(
        "--order", default="top-down", choices=("top-down", "bottom-up"),
        help="the order in which the randomisation tests re-initialise layers (default top-down, as the "
        "paper)",
    )  # fmt: skip
    parser.add_argument(
        "--layers", default=None, metavar="LIST",
        help="comma-separated learned layers the randomisation tests re-initialise (default: all, from "
        "the top down)",
    )  # fmt: skip
    parser.add_argument(
        "--pointing-weights", type=Path, default=None, metavar="FILE",
        help=f"the network for the pointing game on the shipped 84x84 canvases ({model_files()}; default: "
        "the shipped GAP model; it must accept 84x84 inputs)",
    )  # fmt: skip
    parser.add_argument("--pointing-count", type=positive_int, default=20, help="canvases (default 20)")
    parser.add_argument(
        "--permuted-weights", type=Path, default=None, metavar="FILE",
        help=f"the same architecture trained on permuted labels ({model_files()}), for the data "
        "randomisation test (default: the shipped mnist_vgg_permuted.h5 when --weights is the shipped "
        "mnist_vgg.h5)",
    )  # fmt: skip


def choose(text: str, valid, what: str) -> list[str]:
    """'all' -> valid; 'a,b' -> ['a', 'b'] checked against ``valid`` (the error lists them)."""
    if str(text).strip() == "all":
        return list(valid)
    chosen = [s.strip() for s in str(text).split(",") if s.strip()]
    for name in chosen:
        if name not in valid:
            raise MinicnnError(f"unknown {what} {name!r}; expected one of: {', '.join(valid)}")
    if not chosen:
        raise MinicnnError(f"--{what}s is empty; expected one of: {', '.join(valid)}")
    return chosen


def run(args) -> Report:
    from minicnn import paths
    from minicnn.cli.loading import load_network
    from minicnn.tools.sanity import check_layers
    from minicnn.tools.sanity_data import PERMUTED_MODEL
    from minicnn.tools.sanity_methods import METHODS, available_methods, check_methods, method_names
    from minicnn.tools.sanity_protocols import measures
    from minicnn.tools.sanity_suite import CLAIMS, TESTS, run_checks

    if args.count < 1 or args.pointing_count < 1:
        raise MinicnnError("--count and --pointing-count must be >= 1")
    tests = choose(args.tests, TESTS, "test")
    if args.methods.strip() != "all":
        method_names(args.methods)  # the names, before the model loads
    ctx = prepare(args, "sanity", count=args.count)
    net = ctx.net
    methods = available_methods(net) if args.methods.strip() == "all" else method_names(args.methods)
    methods = check_methods(net, methods)  # CAM on a network without a GAP head: one line
    layers = check_layers(net, args.layers)  # before any work: the error lists the valid names
    pointing = permuted = None
    if "pointing" in tests:
        pointing = _pointing_inputs(args, load_network(args.pointing_weights or paths.GAP_MODEL, args.device))
    if "data" in tests:
        path = args.permuted_weights
        if path is None and Path(args.weights).resolve() == Path(paths.DEFAULT_MODEL).resolve():
            path = PERMUTED_MODEL
        if path is not None:
            permuted = load_network(path, args.device)
    findings = run_checks(
        net, ctx.inputs.x, ctx.targets, methods, tests, seed=args.seed, pointing=pointing,
        permuted=permuted, progress=not getattr(args, "no_progress", False), layers=layers,
        protocol=args.protocol, order=args.order,
    )  # fmt: skip
    report = ctx.report
    report.methods += [f"{METHODS[m][0]} ({METHODS[m][1]})" for m in methods]
    report.settings.update(tests=tests, seed=args.seed, pointing_count=args.pointing_count, layers=layers,
                           protocol=args.protocol, order=args.order)  # fmt: skip
    text = ["method x test (see 'minicnn sanity --help' for each column's measure)", findings.table(), ""]
    text += (
        findings.verdicts() + findings.notes + ["", "the papers:"] + [f"  {t}: {CLAIMS[t]}" for t in tests]
    )
    for line in text:
        report.say(line)
    report.tables["sanity"] = "\n".join(text) + "\n"
    report.tables["sanity_rows"] = [{"method": m, **row} for m, row in findings.rows.items()]
    report.tables["sanity_verdicts"] = [
        {"method": m, "test": test, "protocol": c.protocol, "measure": c.measure, "value": c.value,
         "tied": c.tied, "verdict": "changed" if c.changed else "alike"}
        for (m, test), c in findings.cells.items()
    ]  # fmt: skip
    for m, row in findings.rows.items():
        for col, v in row.items():
            if isinstance(v, float):
                report.numbers[f"{m} {col}"] = v
    if "pointing" in findings.results:
        for m, acc in findings.results["pointing"].accuracy.items():
            report.numbers[f"{m} pointing"] = acc
    details = []
    for test in ("cascade", "independent", "smooth_mprt"):
        if test in findings.results:
            res = findings.results[test]
            details += [res.table(metric) + "\n" for metric in measures(args.protocol)]
            _curves(ctx, res, test)
            if test != "smooth_mprt":
                _figures(ctx, res, test)
    ctx.out.text("sanity.txt", report.tables["sanity"] + "\n" + "\n".join(details))
    return report


def _pointing_inputs(args, pnet):
    """(network, canvases, boxes, labels) of the shipped digits-in-clutter canvases for ``pnet``."""
    import argparse

    from minicnn.cli.inputs import load_inputs

    if not any(layer.is_global_pool for layer in pnet.layers):
        raise MinicnnError(
            "the pointing game runs on 84x84 canvases: --pointing-weights must be a GAP network"
        )
    canvases = load_inputs(argparse.Namespace(image=None), pnet, args.pointing_count, "gap", "clutter")
    return pnet, canvases.x, canvases.boxes, canvases.labels


def _curves(ctx, res, test: str) -> None:
    """The similarity curves over the steps, one line per method (Adebayo et al. 2018, fig. 4): the
    paper's Spearman (abs) and the same over the pixels non-zero in both maps."""
    from minicnn.render.randomization import result_plot
    from minicnn.tools.sanity_methods import METHODS

    titles = {m: METHODS[m][0] for m in res.methods}
    for measure, suffix in (("spearman_abs", ""), ("spearman_fg", "_fg")):
        caption = (
            f"{test} randomisation ({res.order}): {measure} with the trained maps per step, "
            f"protocol {res.protocol}"
        )
        ctx.out.png(f"sanity_{test}_curve{suffix}.png", result_plot(res, measure, titles), caption)


def _figures(ctx, res, test: str) -> None:
    """One figure per image: rows = methods, columns = steps (Adebayo et al. 2018, fig. 2); with
    --save-arrays also the maps, one .npz per image."""
    from minicnn.render.randomization import randomization_figure
    from minicnn.tools.sanity_methods import METHODS

    steps = ["trained", *res.layers]
    titles = {m: METHODS[m][0] for m in res.methods}
    for i in range(len(ctx.inputs.names)):
        maps = {m: res.maps[m][:, i] for m in res.methods}
        picture = randomization_figure(ctx.inputs.display[i], maps, steps, titles)
        caption = (
            f"{test} randomisation, {ctx.label(i)}: |map| scaled to its maximum, trained then {res.order} "
            f"(similarities in sanity.txt, protocol {res.protocol})"
        )
        stem = ctx.stem(i, "sanity_" + test)
        ctx.out.png(f"{stem}.png", picture, caption)
        # with --save-arrays: each method's (steps + 1, H, W) maps, step 0 the trained network's
        ctx.out.arrays(f"{stem}.npz", maps, ctx.meta(i, f"{test} randomisation", steps=",".join(steps)))
