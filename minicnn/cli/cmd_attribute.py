"""``minicnn attribute``: an attribution map for every image of a dataset, one file per image."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.job_options import add_job_options, dataset_and_targets, runner_of
from minicnn.cli.options import add_common
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError
from minicnn.rules import MODES
from minicnn.tools.methods import choices, get

HELP = "batch attribution: any attribution method (saliency, Grad-CAM, LRP, IG, ...) for a whole dataset"
EPILOG = """\
Computes one attribution map per image of a dataset (a folder, searched recursively, an .npz, or the
shipped digits) and writes one .npz per image under OUT/<method>/ (the image's relative path with
.npz; the map under the method's name, the class, and the model and settings in 'meta'). Methods
(minicnn/tools/methods.py names them all; the map's shape is (C, H, W) unless said):
  saliency        max_c |dS/dI| (H, W) (Simonyan et al. 2013); --smoothgrad N, --times-input
  gradient, gradient_x_input, smoothgrad (--smoothgrad N, default 50), guided, deconvnet
  cam             class activation map (H, W) of a GAP network (Zhou et al. 2016)
  grad_cam        Grad-CAM (H, W) at --layer (Selvaraju et al. 2017); also: gradcam
  guided-grad-cam guided backprop x Grad-CAM at --layer, --upsample bilinear|nearest
  occlusion       score drop (H, W) under a grey square of --size, every --stride pixels
  reconstruct     projection of --layer's strongest unit to pixels, --mode deconvnet|guided|gradient
  integrated-gradients  Sundararajan et al. 2017: --baseline, --steps, --quadrature
  deeplift        DeepLIFT-Rescale against --baseline (Shrikumar et al. 2017)
  lrp-epsilon, lrp-zplus, lrp-alpha1beta0, lrp-composite: LRP (Bach et al. 2015), --epsilon,
                  --composite NAME (Zennit's composites; default epsilon-plus-flat)
  excitation, contrastive-excitation: winning probabilities (Zhang et al. 2016), at the input or
                  at --layer's output
The class is each image's predicted one, or --target CLASS. The dataset is cut into shards that run
in this process, in --jobs N processes or on a Dask cluster (--scheduler); --resume skips the shards
whose maps are written.

examples:
  minicnn attribute --image photos/ --weights vgg16.h5 --jobs 2
  minicnn attribute --method occlusion --size 6 --stride 2 --count 500
  minicnn attribute --method integrated-gradients --steps 64 --quadrature riemann_trapezoid
  minicnn attribute --method lrp-composite --composite epsilon-gamma-box --count 50
  minicnn attribute --image /shared/val --weights /shared/vgg16.h5 --method gradcam \\
                    --layer block5_conv3 --scheduler tcp://10.0.0.1:8786
"""

#: every method of the registry; the names the command accepted before it (gradcam) stay accepted
METHODS = choices()


def finite_number(text: str) -> float:
    """A finite float (a baseline's value in network-input units)."""
    from minicnn.cli.options import _number

    return _number(text, float, "a finite number", lambda v: abs(v) < float("inf"))


def add_arguments(parser) -> None:
    from minicnn.cli.options import nonnegative_float, nonnegative_int, positive_int
    from minicnn.rules import COMPOSITES
    from minicnn.tools.guided_gradcam import UPSAMPLING
    from minicnn.tools.integrated_gradients import QUADRATURES

    add_common(parser, target=False, layer="")
    parser.add_argument("--method", choices=METHODS, default="saliency", metavar="METHOD",
                        help="the map (default saliency); see below")  # fmt: skip
    parser.add_argument(
        "--target", default="predicted", metavar="CLASS",
        help="class index for every image, or 'predicted' (default: each image's predicted class)",
    )  # fmt: skip
    parser.add_argument(
        "--smoothgrad", type=nonnegative_int, default=0, metavar="N",
        help="SmoothGrad samples (saliency: default 0; smoothgrad: default 50)",
    )  # fmt: skip
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
    parser.add_argument("--baseline", type=finite_number, default=0.0, metavar="VALUE",
                        help="reference input value of integrated-gradients and deeplift, in "
                        "network-input units (default 0)")  # fmt: skip
    parser.add_argument("--steps", type=positive_int, default=50,
                        help="integrated-gradients' path points (default 50)")  # fmt: skip
    parser.add_argument("--quadrature", choices=QUADRATURES, default="gausslegendre",
                        help="integrated-gradients' quadrature (default gausslegendre)")  # fmt: skip
    parser.add_argument("--epsilon", type=nonnegative_float, default=1e-6,
                        help="lrp-epsilon's stabiliser (default 1e-6)")  # fmt: skip
    parser.add_argument("--composite", choices=tuple(COMPOSITES), default="epsilon-plus-flat",
                        metavar="NAME", help=f"lrp-composite's rules per layer: {', '.join(COMPOSITES)} "
                        "(default epsilon-plus-flat)")  # fmt: skip
    parser.add_argument("--upsample", choices=UPSAMPLING, default="bilinear",
                        help="guided-grad-cam's upsampling of Grad-CAM (default bilinear, the paper's; "
                        "nearest is Captum's default)")  # fmt: skip
    parser.add_argument(
        "--count", type=positive_int, default=200,
        help="shipped held-out digits without --image (default 200)",
    )  # fmt: skip
    add_job_options(parser, shard_size=64)


def _layer_for(method: str, args, net):
    """The layer option: reconstruct and the Grad-CAM family default to the last rectified feature
    map; excitation's map is at the input unless --layer names a layer."""
    from minicnn.cli.layer_choice import check_layer, feature_layer

    if "excitation" in method:
        return check_layer(net, args.layer) if args.layer else None
    return check_layer(net, args.layer or feature_layer(net))


def method_settings(args, net):
    """(settings: the keyword options of the registry's method (tools/methods.py), a description).

    The command's options fill the options the method has; the others keep the registry's defaults."""
    method = get(args.method)
    method.check(net)  # CAM without a global-average-pooling head: one line naming what it needs
    given = {
        "times_input": bool(args.times_input),
        "samples": int(args.smoothgrad) if args.smoothgrad or method.name == "saliency" else None,
        "seed": int(args.seed),
        "size": args.size,
        "stride": args.stride,
        "mode": args.mode,
        "baseline": float(args.baseline),
        "steps": int(args.steps),
        "method": args.quadrature,
        "epsilon": float(args.epsilon),
        "composite": args.composite,
        "upsample": args.upsample,
    }
    settings = {k: v for k, v in given.items() if k in method.options and v is not None}
    if "layer" in method.options:
        settings["layer"] = _layer_for(method.name, args, net)
    if method.name == "integrated-gradients" and args.quadrature == "riemann_trapezoid" and args.steps < 2:
        raise MinicnnError("--quadrature riemann_trapezoid needs --steps >= 2")
    settings = method.settings(settings)
    return settings, f"{method.title}{_details(method.name, settings)} ({method.paper})"


def _details(name: str, s: dict) -> str:
    """The settings a reader needs to reproduce the map, as text after the method's title."""
    if name == "saliency":
        smooth = f", SmoothGrad {s['samples']}" if s["samples"] else ""
        return (" x input" if s["times_input"] else "") + smooth
    if name == "smoothgrad":
        return f", {s['samples']} samples"
    if name == "occlusion":
        return f", {s['size']} px square every {s['stride']} px"
    if name == "reconstruct":
        return f", {s['mode']} from {s['layer']}"
    if name == "integrated-gradients":
        return f", baseline {s['baseline']:g}, {s['steps']} steps ({s['method']})"
    if name == "deeplift":
        return f", baseline {s['baseline']:g}"
    if name == "lrp-epsilon":
        return f", epsilon {s['epsilon']:g}"
    if name == "lrp-composite":
        return f" {s['composite']}"
    where = f" at {s['layer']}" if s.get("layer") else ""
    return where + (f", {s['upsample']} upsampling" if name == "guided-grad-cam" else "")


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
