"""``minicnn attribute``: an attribution map for every image of a dataset, one file per image."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.job_options import add_job_options, dataset_and_targets, runner_of
from minicnn.cli.options import add_common
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError
from minicnn.rules import MODES

HELP = "batch attribution: saliency, CAM, Grad-CAM, occlusion or projection maps for a whole dataset"
EPILOG = """\
Computes one attribution map per image of a dataset (a folder, searched recursively, an .npz, or the
shipped digits) and writes one .npz per image under OUT/<method>/ (the image's relative path with
.npz; the map under the method's name, the class, and the model and settings in 'meta'):
  saliency     max_c |dS/dI| (Simonyan et al. 2013); --smoothgrad N, --times-input
  cam          class activation map of a GAP network (Zhou et al. 2016)
  gradcam      Grad-CAM at --layer (Selvaraju et al. 2017)
  occlusion    score drop under a grey square of --size, every --stride pixels (Zeiler & Fergus 2013)
  reconstruct  projection of --layer's strongest unit to pixels, --mode deconvnet|guided|gradient
The class is each image's predicted one, or --target CLASS. The dataset is cut into shards that run
in this process, in --jobs N processes or on a Dask cluster (--scheduler); --resume skips the shards
whose maps are written.

examples:
  minicnn attribute --image photos/ --weights vgg16.h5 --jobs 2
  minicnn attribute --method occlusion --size 6 --stride 2 --count 500
  minicnn attribute --image /shared/val --weights /shared/vgg16.h5 --method gradcam \\
                    --layer block5_conv3 --scheduler tcp://10.0.0.1:8786
"""

METHODS = ("saliency", "cam", "gradcam", "occlusion", "reconstruct")


def add_arguments(parser) -> None:
    from minicnn.cli.options import nonnegative_int, positive_int

    add_common(parser, target=False, layer="")
    parser.add_argument("--method", choices=METHODS, default="saliency", help="the map (default saliency)")
    parser.add_argument(
        "--target", default="predicted", metavar="CLASS",
        help="class index for every image, or 'predicted' (default: each image's predicted class)",
    )  # fmt: skip
    parser.add_argument(
        "--smoothgrad", type=nonnegative_int, default=0, metavar="N", help="SmoothGrad samples (default 0)"
    )
    parser.add_argument("--times-input", action="store_true", help="gradient x input (saliency)")
    parser.add_argument(
        "--size", type=positive_int, default=8, help="occluder side in pixels (occlusion; default 8)"
    )
    parser.add_argument(
        "--stride", type=positive_int, default=4, help="occluder step in pixels (occlusion; default 4)"
    )
    parser.add_argument(
        "--mode", choices=MODES, default="deconvnet",
        help="backward rule of reconstruct (default deconvnet)",
    )  # fmt: skip
    parser.add_argument(
        "--count", type=positive_int, default=200,
        help="shipped held-out digits without --image (default 200)",
    )  # fmt: skip
    add_job_options(parser, shard_size=64)


def method_settings(args, net):
    """(settings: the keyword arguments of the method's function in jobs/attribute.py, a description)."""
    from minicnn.cli.layer_choice import check_layer, feature_layer

    if args.method == "saliency":
        if args.smoothgrad < 0:
            raise MinicnnError(f"--smoothgrad must be >= 0, got {args.smoothgrad}")
        settings = {
            "times_input": bool(args.times_input),
            "samples": int(args.smoothgrad),
            "seed": int(args.seed),
        }
        extra = (" x input" if args.times_input else "") + (
            f", SmoothGrad {args.smoothgrad}" if args.smoothgrad else ""
        )
        return settings, f"saliency{extra} (Simonyan et al. 2013)"
    if args.method == "occlusion":
        if args.size < 1 or args.stride < 1:
            raise MinicnnError(f"--size and --stride must be >= 1, got {args.size}, {args.stride}")
        return {"size": args.size, "stride": args.stride}, (
            f"occlusion, {args.size} px square every {args.stride} px (Zeiler & Fergus 2013)"
        )
    if args.method == "cam":
        if not any(layer.is_global_pool for layer in net.layers):
            raise MinicnnError(
                f"--method cam needs a network with global average pooling; {args.weights} has none"
            )
        return {}, "CAM (Zhou et al. 2016)"
    layer = check_layer(net, args.layer or feature_layer(net))
    if args.method == "gradcam":
        return {"layer": layer}, f"Grad-CAM at {layer} (Selvaraju et al. 2017)"
    return {"layer": layer, "mode": args.mode}, f"{args.mode} projection from {layer} (Zeiler & Fergus 2013)"


def run(args) -> Report:

    from minicnn.cli.context import preprocessing
    from minicnn.cli.loading import load_network
    from minicnn.cli.output import open_output
    from minicnn.jobs.attribute import AttributeJob, attribute_shard, writer
    from minicnn.jobs.perimage import run_per_image
    from minicnn.jobs.runners import Workers
    from minicnn.jobs.shards import file_hash
    from minicnn.jobs.worker import remember

    runner = runner_of(args)
    out = open_output(args, "attribute")
    net = load_network(args.weights, args.device)
    how = preprocessing(net, args)  # --preprocess, else the file's; said below
    data, targets = dataset_and_targets(args, net)
    settings, method = method_settings(args, net)
    weights = str(Path(args.weights).absolute())
    job = AttributeJob(
        weights, file_hash(weights), args.device, data, tuple(sorted(settings.items())), args.method
    )
    remember(net, weights, job.model_sha256, args.device)
    report = out.report
    report.model, report.inputs = str(args.weights), [data.path]
    report.say(f"minicnn attribute: {method}, {Path(args.weights).name}, {len(data)} image(s) in "
               f"{data.path}, shards of {args.shard_size}, run {runner.describe()}")  # fmt: skip
    report.say(f"  {how}")
    report.settings["preprocess"] = net.meta["preprocess"]
    report.methods.append(method)
    report.settings.update(settings, method=args.method, target=args.target)
    folder = out.folder / args.method
    meta = {"model": str(args.weights), "method": method, "preprocess": data.preprocess, **settings}
    work = args.work if args.work is not None else out.folder / "shards" / args.method
    with Workers(runner) as workers:
        result, bad = run_per_image(
            attribute_shard, job, work, workers, phase=args.method, keep=("target",), targets=targets,
            shard_size=args.shard_size, resume=args.resume, skip_bad=args.skip_bad,
            deliver=writer(job, folder, meta), say=report.say,
        )  # fmt: skip
    report.say(f"  wrote {len(result['index'])} map(s) under {folder}")
    report.paths.append(folder)
    report.numbers.update({"images": len(result["index"]), "unreadable images": len(bad)})
    return report
