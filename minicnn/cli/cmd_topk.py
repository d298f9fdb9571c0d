"""``minicnn topk``: the top-9 DeconvNet projections of feature maps over a dataset (Zeiler & Fergus 2013)."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.inputs import display_images, display_signal
from minicnn.cli.job_options import add_job_options, runner_of
from minicnn.cli.layer_choice import check_layer, feature_layer
from minicnn.cli.options import add_common
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError
from minicnn.rules import MODES

HELP = "top-9 projections: strongest activations of feature maps over a dataset, projected to pixels"
EPILOG = """\
Scans a dataset (a folder of images, searched recursively, an .npz of images, or the shipped held-out
digits) for the k strongest activations
of each chosen feature map of --layer, projects each back to pixels (DeconvNet by default) and cuts
the receptive-field patch from its image: projections on the left, patches on the right, strongest
first (Zeiler & Fergus 2013, sec. 2.1, fig. 2). The dataset is cut into shards (minicnn/jobs) that
run in this process, in --jobs N local processes or on a Dask cluster (--scheduler); each shard's
result is saved as it finishes, and --resume continues an interrupted run. The answer is the same
for every runner and worker count.

examples:
  minicnn topk                                     # 4 maps of the last conv block, 200 digits
  minicnn topk --layer block1_conv2_relu --channels 0 5 9 --k 16
  minicnn topk --weights vgg16_weights_tf_dim_ordering_tf_kernels.h5 --image photos/ \\
               --layer block3_conv3_relu --mode guided
  minicnn topk --image /data/imagenet/val --weights vgg16.h5 --jobs 2 --resume
  minicnn topk --image /shared/val --weights /shared/vgg16.h5 --scheduler tcp://10.0.0.1:8786
"""


def add_arguments(parser) -> None:
    from minicnn.cli.options import nonnegative_int, positive_int

    add_common(parser, target=False, layer="")
    parser.add_argument("--k", type=positive_int, default=9, help="images per feature map (default 9)")
    parser.add_argument(
        "--channels", type=nonnegative_int, nargs="+", default=None, metavar="C",
        help="feature maps to show (default: the first 4)",
    )  # fmt: skip
    parser.add_argument(
        "--mode", choices=MODES, default="deconvnet",
        help="backward rule of the projections (default deconvnet)",
    )  # fmt: skip
    parser.add_argument(
        "--count", type=positive_int, default=200, help="shipped held-out digits scanned (default 200)"
    )
    add_job_options(parser)


def run(args) -> Report:
    import numpy as np

    from minicnn import paths
    from minicnn.cli.context import preprocessing
    from minicnn.cli.loading import load_network
    from minicnn.cli.output import open_output
    from minicnn.jobs.dataset import open_dataset
    from minicnn.jobs.runners import Workers
    from minicnn.jobs.shards import file_hash
    from minicnn.jobs.topk import TopkJob, run_topk
    from minicnn.jobs.worker import remember
    from minicnn.render import figures

    if args.count < 1:
        raise MinicnnError(f"--count must be >= 1, got {args.count}")
    if args.k < 1:
        raise MinicnnError(f"--k must be >= 1, got {args.k}")
    runner = runner_of(args)
    out = open_output(args, "topk")
    net = load_network(args.weights, args.device)
    how = preprocessing(net, args)  # --preprocess, else the file's; said below
    layer = check_layer(net, args.layer or feature_layer(net))
    source = args.image if args.image is not None else paths.HELDOUT
    data = open_dataset(
        source, net.input_shape, net.meta.get("preprocess") or "none", net.dtype,
        count=None if args.image is not None else args.count,
    )  # fmt: skip
    net.shapes(data.shape)  # one clear error when the images are too small for the network
    n_maps = net.shapes(data.shape)[net.index(layer)][0]
    channels = args.channels if args.channels is not None else list(range(min(4, n_maps)))
    if any(c < 0 or c >= n_maps for c in channels):
        raise MinicnnError(f"--channels: layer {layer!r} has {n_maps} feature maps (0..{n_maps - 1})")
    weights = str(Path(args.weights).absolute())  # workers open the same path
    job = TopkJob(weights, file_hash(weights), args.device, data, layer, args.k, args.mode,
                  tuple(int(c) for c in channels), args.batch_size)  # fmt: skip
    remember(net, weights, job.model_sha256, args.device)  # the in-process runner reuses this copy
    report = out.report
    report.model = str(args.weights)
    report.inputs = [data.path]
    report.say(f"minicnn topk: {Path(args.weights).name}, {len(data)} image(s) in {data.path}")
    report.say(f"  {how}")
    report.settings["preprocess"] = net.meta["preprocess"]
    n_images = len(data)
    report.say(f"  layer {layer}, channels {channels}, top-{args.k} over {n_images} images ({args.mode})")
    report.say(f"  shards of {args.shard_size} images, run {runner.describe()}")
    report.methods.append(f"top-{args.k} projections, {args.mode} rule (Zeiler & Fergus 2013)")
    report.settings.update(layer=layer, channels=[int(c) for c in channels], k=args.k, mode=args.mode)
    work = args.work if args.work is not None else out.folder / "shards" / f"topk-{layer}"
    with Workers(runner) as workers:
        result, bad = run_topk(
            job, net, work, workers, shard_size=args.shard_size, resume=args.resume, skip_bad=args.skip_bad,
            say=report.say,
        )  # fmt: skip
    x = range(n_images - len(bad))  # the images scanned (for the captions)
    report.numbers["images"] = len(x)
    report.numbers["unreadable images"] = len(bad)
    for row, channel in enumerate(result.channels):
        keep = result.index[row] >= 0  # fewer than k images: empty slots
        patches = display_images(net, result.patches[row][keep])
        projections = [display_signal(net, p) for p in result.projections[row][keep]]
        values = ", ".join(f"{v:.3g}" for v in result.values[row][keep][:3])
        report.say(f"  channel {int(channel)}: strongest activations {values}, ...")
        report.numbers[f"channel {int(channel)} strongest activation"] = float(result.values[row][0])
        title = (
            f"feature map {int(channel)} of {layer} in {Path(args.weights).name}: its {len(patches)} "
            "strongest "
            f"activations over {len(x)} images, projected to pixels ({args.mode}), beside the input patches"
        )
        picture = figures.topk_figure(projections, patches, title)
        out.png(f"{layer}_ch{int(channel)}_top{args.k}.png", picture, title)
    meta = {"model": str(args.weights), "method": f"top-{args.k} {args.mode}", "layer": layer,
            "channels": [int(c) for c in result.channels], "dataset": data.path,
            "images": len(x)}  # fmt: skip
    ids = np.array([[data.ids[i] if i >= 0 else "" for i in row] for row in result.index.tolist()], dtype=str)
    out.arrays(
        f"{layer}_top{args.k}.npz",
        {"projections": result.projections, "patches": result.patches, "index": np.asarray(result.index),
         "values": result.values, "boxes": result.boxes, "positions": result.position, "ids": ids},
        meta,
    )  # fmt: skip
    return report
