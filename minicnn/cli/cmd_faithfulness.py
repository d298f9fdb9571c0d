"""``minicnn faithfulness``: deletion, insertion, pixel flipping and ROAD curves of attribution maps."""

from __future__ import annotations

from minicnn.cli.context import prepare
from minicnn.cli.options import add_common
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "faithfulness of attribution maps: deletion, insertion, pixel flipping and ROAD curves with AUCs"
EPILOG = """\
Changes the pixels each method ranks first and follows the target class's probability:
  deletion        most relevant pixels set to zero (Petsiuk et al. 2018, RISE): lower AUC is better
  insertion       most relevant pixels put back into RISE's blurred image: higher AUC is better
  pixel_flipping  most relevant pixels set to the image's minimum (Bach et al. 2015; Samek et al.
                  2017, most relevant first): lower AUC is better
  road_morf       ROAD (Rong et al. 2022): most relevant pixels imputed from their neighbours plus
                  noise; lower AUC is better
  road_lerf       ROAD, least relevant first: higher AUC is better
  region_morf     region perturbation (Samek et al. 2017): --patch squares ranked by summed
                  relevance set to the image's minimum, one per point: lower AUC is better
Pixels are ranked by |map| summed over channels (--signed: by the signed map). AUC: the trapezoid
rule over the share of pixels changed (0..1; ROAD's over its --fractions only, so 0.1..0.9 gives at
most 0.8). On images whose minimum is 0 (the digits) pixel flipping with the same step is deletion.
Writes faithfulness.txt (the table), faithfulness-curves.csv (every point of every curve) and one
plot per metric, faithfulness_<metric>.png (the mean curve of each method, its AUC in the legend);
--json prints the AUCs.

examples:
  minicnn faithfulness                                       # shipped digit model, 4 digits
  minicnn faithfulness --methods gradient,integrated-gradients --metrics deletion,road_morf --json
  minicnn faithfulness --step 4 --fractions 0.1,0.3,0.5,0.7,0.9
"""

METRICS = ("deletion", "insertion", "pixel_flipping", "road_morf", "road_lerf", "region_morf")
LOWER_IS_BETTER = {"deletion": True, "insertion": False, "pixel_flipping": True, "road_morf": True,
                   "road_lerf": False, "region_morf": True}  # fmt: skip
DEFAULT_METHODS = "gradient,gradient_x_input,integrated-gradients"


def add_arguments(parser) -> None:
    from minicnn.cli.options import nonnegative_float, positive_int

    add_common(parser)
    parser.add_argument("--count", type=positive_int, default=4, help="shipped digits used (default 4)")
    parser.add_argument(
        "--methods", default=DEFAULT_METHODS, metavar="LIST",
        help=f"comma-separated attribution methods (default {DEFAULT_METHODS})",
    )  # fmt: skip
    parser.add_argument(
        "--metrics", default=",".join(METRICS), metavar="LIST",
        help=f"comma-separated, of {', '.join(METRICS)} (default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--step", type=positive_int, default=None,
        help="pixels changed per point of the deletion, insertion and pixel-flipping curves "
        "(default: one image row's worth, W)",
    )  # fmt: skip
    parser.add_argument(
        "--fractions", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9", metavar="LIST",
        help="ROAD's shares of pixels removed, each in [0, 1) (default 0.1,...,0.9)",
    )  # fmt: skip
    parser.add_argument(
        "--patch", type=positive_int, default=4,
        help="side of region_morf's squares in pixels; must divide the image (default 4)",
    )  # fmt: skip
    parser.add_argument("--noise", type=nonnegative_float, default=0.01, help="ROAD's noise (default 0.01)")
    parser.add_argument("--signed", action="store_true", help="rank pixels by the signed map, not |map|")


def _names(text: str, valid, what: str) -> list[str]:
    chosen = [s.strip() for s in str(text).split(",") if s.strip()]
    if not chosen:
        raise MinicnnError(f"--{what}s is empty; expected some of: {', '.join(valid)}")
    for name in chosen:
        if name not in valid:
            raise MinicnnError(f"unknown {what} {name!r}; expected one of: {', '.join(valid)}")
    return chosen


def _fractions(text: str) -> list[float]:
    try:
        values = [float(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise MinicnnError(f"--fractions {text!r}: expected comma-separated numbers in [0, 1)") from None
    if not values or any(not 0 <= v < 1 for v in values):
        raise MinicnnError(f"--fractions {text!r}: expected comma-separated numbers in [0, 1)")
    return values


def ranking_maps(net, x, targets, method: str, record, signed: bool):
    """The (N, H, W) float64 map of one registry method that the curves rank pixels by: summed
    over channels, then |.| unless ``signed``."""
    import numpy as np

    from minicnn.backend import to_numpy
    from minicnn.tools.methods import get

    a = to_numpy(get(method)(net, x, targets, record=record)).astype(np.float64)
    a = a.sum(axis=1) if a.ndim == 4 else a
    return a if signed else np.abs(a)


def run(args) -> Report:
    from minicnn.tools.faithfulness import deletion, insertion, pixel_flipping, region_perturbation
    from minicnn.tools.faithfulness_road import road
    from minicnn.tools.methods import canonical, choices, get

    metrics = _names(args.metrics, METRICS, "metric")
    methods = [canonical(m) for m in _names(args.methods, choices(), "method")]
    fractions = _fractions(args.fractions)
    ctx = prepare(args, "faithfulness", count=args.count)
    net, x, targets = ctx.net, ctx.inputs.x, ctx.targets
    for m in methods:
        get(m).check(net)
    step = args.step
    if "region_morf" in metrics and (x.shape[2] % args.patch or x.shape[3] % args.patch):
        raise MinicnnError(f"--patch {args.patch} must divide the image's {x.shape[2]}x{x.shape[3]} pixels")
    if step is not None and step > x.shape[2] * x.shape[3]:
        raise MinicnnError(f"--step {step} exceeds the image's {x.shape[2] * x.shape[3]} pixels")
    runs = {
        "deletion": lambda maps: deletion(net, x, maps, targets, step=step, record=ctx.record),
        "insertion": lambda maps: insertion(net, x, maps, targets, step=step, record=ctx.record),
        "pixel_flipping": lambda maps: pixel_flipping(
            net, x, maps, targets, step=step or x.shape[3], record=ctx.record
        ),  # fmt: skip
        "road_morf": lambda maps: road(
            net, x, maps, targets, fractions, "morf", args.noise, args.seed, record=ctx.record
        ),  # fmt: skip
        "region_morf": lambda maps: region_perturbation(
            net, x, maps, targets, patch=args.patch, record=ctx.record
        ),  # fmt: skip
        "road_lerf": lambda maps: road(
            net, x, maps, targets, fractions, "lerf", args.noise, args.seed, record=ctx.record
        ),  # fmt: skip
    }
    report = ctx.report
    rows, csv = [], ["method,metric,image,fraction,value"]
    results = {metric: {} for metric in metrics}  # metric -> method -> FaithfulnessResult
    for m in methods:
        maps = ranking_maps(net, x, targets, m, ctx.record, args.signed)
        row = {"method": m}
        for metric in metrics:
            result = results[metric][m] = runs[metric](maps)
            row[metric] = float(result.auc.mean())
            report.numbers[f"{m} {metric} auc"] = row[metric]
            for i, name in enumerate(ctx.inputs.names):
                csv += [
                    f"{m},{metric},{name},{f:.6g},{v:.8g}" for f, v in zip(result.fractions, result.curves[i])
                ]
            if result.correct is not None:
                report.numbers[f"{m} {metric} accuracy"] = [float(v) for v in result.correct.mean(axis=0)]
        rows.append(row)
    report.methods += [get(m).describe() for m in methods]
    ranking = "signed map" if args.signed else "|map|"
    report.settings.update(metrics=metrics, step=step, patch=args.patch, fractions=fractions,
                           noise=args.noise, ranking=ranking, seed=args.seed)  # fmt: skip
    report.tables["faithfulness"] = rows
    width = max(len(m) for m in methods) + 2
    head = "method".ljust(width) + "".join(f"{metric:>16}" for metric in metrics)
    better = " " * width + "".join(f"{'(lower better)' if LOWER_IS_BETTER[k] else '(higher better)':>16}"
                                   for k in metrics)  # fmt: skip
    lines = [f"AUC of the target's probability, mean over {len(targets)} image(s)", head, better]
    lines += [m.ljust(width) + "".join(f"{row[k]:>16.4f}" for k in metrics) for m, row in zip(methods, rows)]
    for line in lines:
        report.say(line)
    ctx.out.text("faithfulness.txt", "\n".join(lines) + "\n")
    ctx.out.text("faithfulness-curves.csv", "\n".join(csv) + "\n")
    _plots(ctx, results, ranking)
    return report


def _plots(ctx, results: dict, ranking: str) -> None:
    """One picture per metric: each method's mean curve, its AUC in the legend."""
    from minicnn.render.faithfulness import faithfulness_plot
    from minicnn.tools.methods import get

    for metric, by_method in results.items():
        curves = {get(m).title: res for m, res in by_method.items()}
        caption = (
            f"{metric}: mean curve per method over {len(ctx.targets)} image(s), pixels ranked by {ranking}"
        )
        ctx.out.png(f"faithfulness_{metric}.png", faithfulness_plot(curves), caption)
