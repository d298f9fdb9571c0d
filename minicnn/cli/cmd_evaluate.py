"""``minicnn evaluate``: localisation over a labelled dataset, IoU with true boxes (Simonyan et al. 2013)."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.job_options import add_job_options, runner_of
from minicnn.cli.options import add_common
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "localisation evaluation: saliency + graph-cut boxes over a dataset, IoU with the true boxes"
EPILOG = """\
For every image named in --boxes (a CSV or JSON of labels and boxes, see minicnn/jobs/labels.py):
the saliency map of its class (--target label: the file's label; predicted: the network's), the
graph-cut box of the object (as 'minicnn localize'), and its intersection over union with the true
box. Prints the fraction of images with IoU >= 0.5 and writes one CSV row per image. The dataset is
cut into shards that run in this process, in --jobs N processes or on a Dask cluster (--scheduler),
and --resume continues an interrupted run (Simonyan, Vedaldi & Zisserman 2013, sec. 3.1).

CSV columns: image (path relative to --image, or images[i] in an .npz), label, x0, y0, x1, y1 (the
box in the pixels the network sees, ends exclusive). A network with global average pooling reads the
images at their own size (all the same); any other at its input size.

examples:
  minicnn evaluate --image canvases/ --boxes canvases.csv --target label
  minicnn evaluate --image /shared/val --boxes /shared/val_boxes.json --weights model.h5 --jobs 2
"""


def add_arguments(parser) -> None:
    from minicnn.cli.options import existing_file

    add_common(parser, weights="gap", target=False)
    parser.add_argument(
        "--boxes", type=existing_file, required=True, metavar="FILE",
        help="CSV or JSON with a true box (and a label) per image",
    )  # fmt: skip
    parser.add_argument(
        "--target", choices=("label", "predicted"), default="label",
        help="whose saliency map: the file's label (default) or the predicted class",
    )  # fmt: skip
    add_job_options(parser, shard_size=64)


def run(args) -> Report:
    import numpy as np

    from minicnn.cli.context import preprocessing
    from minicnn.cli.loading import load_network
    from minicnn.cli.output import open_output
    from minicnn.jobs.dataset import open_dataset
    from minicnn.jobs.labels import read_annotations
    from minicnn.jobs.localize import LocalizeJob, localize_shard
    from minicnn.jobs.perimage import run_per_image
    from minicnn.jobs.runners import Workers
    from minicnn.jobs.shards import file_hash
    from minicnn.jobs.worker import remember
    from minicnn.tools.localize import box_iou

    if args.image is None:
        raise MinicnnError("--image: the dataset to evaluate (a folder of images or an .npz) is required")
    runner = runner_of(args)
    out = open_output(args, "evaluate")
    net = load_network(args.weights, args.device)
    how = preprocessing(net, args)  # --preprocess, else the file's; said below
    shape = _input_shape(net, args.image)
    data = open_dataset(args.image, shape, net.meta.get("preprocess") or "none", net.dtype)
    truth = read_annotations(args.boxes, data.ids)
    named = sorted(truth)
    if any(truth[i][1] is None for i in named):
        raise MinicnnError(f"{args.boxes}: every image needs a box (x0, y0, x1, y1) for the evaluation")
    if args.target == "label" and any(truth[i][0] is None for i in named):
        raise MinicnnError(
            f"{args.boxes}: --target label needs a label for every image (or --target predicted)"
        )
    data = data.select(named)  # only the images the file names are evaluated
    targets = np.asarray([truth[i][0] if args.target == "label" else -1 for i in named], dtype=np.int64)
    weights = str(Path(args.weights).absolute())
    job = LocalizeJob(weights, file_hash(weights), args.device, data, file_hash(args.boxes))
    remember(net, weights, job.model_sha256, args.device)
    report = out.report
    report.model, report.inputs = str(args.weights), [data.path]
    report.say(f"minicnn evaluate: {Path(args.weights).name}, {len(data)} image(s) in {data.path} "
               f"named in {args.boxes}, shards of {args.shard_size}, run {runner.describe()}")  # fmt: skip
    report.say(f"  {how}")
    report.settings["preprocess"] = net.meta["preprocess"]
    report.methods.append(
        "saliency + graph cut localisation, IoU with true boxes (Simonyan et al. 2013, sec. 3.1)"
    )
    report.settings.update(target=args.target, boxes=str(args.boxes))
    work = args.work if args.work is not None else out.folder / "shards" / "localize"
    with Workers(runner) as workers:
        result, bad = run_per_image(
            localize_shard, job, work, workers, phase="localize", keep=("boxes", "target", "predicted"),
            targets=targets, shard_size=args.shard_size, resume=args.resume, skip_bad=args.skip_bad,
            say=report.say,
        )  # fmt: skip
    true_boxes = np.stack([truth[named[i]][1] for i in result["index"]])
    ious = box_iou(result["boxes"], true_boxes)
    hits = int((ious >= 0.5).sum())
    lines = ["image,target,predicted,x0,y0,x1,y1,true_x0,true_y0,true_x1,true_y1,iou"]
    for j, i in enumerate(result["index"]):
        box, tb = result["boxes"][j], true_boxes[j]
        lines.append(",".join([data.ids[i], str(result["target"][j]), str(result["predicted"][j]),
                               *map(str, box), *map(str, tb), f"{ious[j]:.6f}"]))  # fmt: skip
    out.text("localization.csv", "\n".join(lines) + "\n")
    out.arrays("localization.npz", {"boxes": result["boxes"], "true_boxes": true_boxes, "iou": ious,
                                    "target": result["target"], "predicted": result["predicted"]},
               {"model": str(args.weights), "method": "localize", "dataset": data.path,
                "images": [data.ids[i] for i in result["index"]]})  # fmt: skip
    n = len(ious)
    report.say(f"  IoU >= 0.5 for {hits} of {n} images ({hits / n:.3f}); mean IoU {ious.mean():.3f}")
    report.numbers.update({"images": n, "unreadable images": len(bad), "fraction IoU >= 0.5": hits / n,
                           "mean IoU": float(ious.mean())})  # fmt: skip
    return report


def _input_shape(net, image):
    """The network's (C, H, W); for a network with global average pooling (any size), the size of
    the dataset's first image."""
    shape = tuple(net.input_shape or ())
    if not any(layer.is_global_pool for layer in net.layers):
        return shape
    from minicnn.jobs.dataset import open_dataset

    path = Path(image)
    if path.is_file() and path.suffix.lower() == ".npz":
        import numpy as np

        from minicnn.jobs.dataset import NPZ_KEYS

        with np.load(path) as d:
            key = next((k for k in NPZ_KEYS if k in d.files), None)
            item = d[key].shape[1:] if key else shape[1:]
        return (shape[0], *(item[1:] if len(item) == 3 and item[0] == shape[0] else item[:2]))
    probe = open_dataset(image, shape or (1, 1, 1), "none", "float32")  # the sorted file list
    from PIL import Image

    with Image.open(Path(probe.path) / probe.ids[0]) as img:
        return (shape[0], img.height, img.width)
