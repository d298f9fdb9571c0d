"""``minicnn attribute``: a saliency map for every image of a dataset, one file each (Simonyan 2013)."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.job_options import add_job_options, runner_of
from minicnn.cli.options import add_common
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "batch attribution: a saliency map for every image of a folder or .npz, one .npz per image"
EPILOG = """\
Computes the saliency map of each image's class (the predicted class, or --target CLASS) for a whole
dataset and writes one .npz per image under OUT/saliency/ (the image's relative path with .npz; the
map, the class, and the model and settings in 'meta'). The dataset is cut into shards that run in
this process, in --jobs N processes or on a Dask cluster (--scheduler); --resume skips the shards
whose maps are written (Simonyan, Vedaldi & Zisserman 2013, sec. 3.1; SmoothGrad: Smilkov et al. 2017).

examples:
  minicnn attribute --image photos/ --weights vgg16.h5 --jobs 2
  minicnn attribute --image /shared/val --weights /shared/vgg16.h5 --smoothgrad 25 --scheduler tcp://10.0.0.1:8786
"""


def add_arguments(parser) -> None:
    add_common(parser, target=False)
    parser.add_argument(
        "--target", default="predicted", metavar="CLASS",
        help="class index for every image, or 'predicted' (default: each image's predicted class)",
    )  # fmt: skip
    parser.add_argument(
        "--smoothgrad", type=int, default=0, metavar="N", help="SmoothGrad samples (default 0)"
    )
    parser.add_argument("--times-input", action="store_true", help="gradient x input")
    parser.add_argument(
        "--count", type=int, default=200, help="shipped held-out digits without --image (default 200)"
    )
    add_job_options(parser, shard_size=64)


def run(args) -> Report:
    import numpy as np

    from minicnn import paths
    from minicnn.cli.loading import load_network
    from minicnn.cli.output import open_output
    from minicnn.jobs.attribute import AttributeJob, saliency_shard, writer
    from minicnn.jobs.dataset import open_dataset
    from minicnn.jobs.perimage import run_per_image
    from minicnn.jobs.runners import Session
    from minicnn.jobs.shards import file_hash
    from minicnn.jobs.worker import remember

    if args.smoothgrad < 0:
        raise MinicnnError(f"--smoothgrad must be >= 0, got {args.smoothgrad}")
    runner = runner_of(args)
    out = open_output(args, "attribute")
    net = load_network(args.weights, args.device)
    source = args.image if args.image is not None else paths.HELDOUT
    data = open_dataset(source, net.input_shape, net.meta.get("preprocess") or "none", net.dtype,
                        count=None if args.image is not None else args.count)  # fmt: skip
    classes = int(net.shapes(data.shape)[-1][0])
    targets = None
    if args.target != "predicted":
        try:
            target = int(args.target)
        except ValueError:
            raise MinicnnError(f"--target {args.target!r}: expected a class index or 'predicted'") from None
        if not 0 <= target < classes:
            raise MinicnnError(f"--target {target}: the network has {classes} classes (0..{classes - 1})")
        targets = np.full(len(data), target, dtype=np.int64)
    settings = {
        "times_input": bool(args.times_input),
        "samples": int(args.smoothgrad),
        "seed": int(args.seed),
    }
    weights = str(Path(args.weights).absolute())
    job = AttributeJob(weights, file_hash(weights), args.device, data, tuple(sorted(settings.items())))
    remember(net, weights, job.model_sha256, args.device)
    report = out.report
    report.model, report.inputs = str(args.weights), [data.path]
    report.say(f"minicnn attribute: {Path(args.weights).name}, {len(data)} image(s) in {data.path}, "
               f"shards of {args.shard_size}, run {runner.describe()}")  # fmt: skip
    method = (
        "saliency"
        + (" x input" if args.times_input else "")
        + (f", SmoothGrad {args.smoothgrad}" if args.smoothgrad else "")
    )
    report.methods.append(f"{method} (Simonyan et al. 2013)")
    report.settings.update(settings, target=args.target)
    folder = out.folder / "saliency"
    meta = {"model": str(args.weights), "method": method, "preprocess": data.preprocess, **settings}
    work = args.work if args.work is not None else out.folder / "shards" / "saliency"
    with Session(runner) as session:
        result, bad = run_per_image(
            saliency_shard, job, work, session, phase="saliency", keep=("target",), targets=targets,
            shard_size=args.shard_size, resume=args.resume, skip_bad=args.skip_bad,
            deliver=writer(job, folder, meta), say=report.say,
        )  # fmt: skip
    report.say(f"  wrote {len(result['index'])} map(s) under {folder}")
    report.paths.append(folder)
    report.numbers.update({"images": len(result["index"]), "unreadable images": len(bad)})
    return report
