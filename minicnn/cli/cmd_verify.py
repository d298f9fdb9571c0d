"""``minicnn verify``: compare an attribution map made by another framework with minicnn's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minicnn.cli.options import (
    add_common,
    existing_file,
    occluder_fill,
    positive_float,
    positive_int,
)
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError
from minicnn.tools.verify import LAYOUTS

HELP = "check another framework's attribution map (Captum, tf-keras-vis, ...) against minicnn's"
EPILOG = """\
The model (--weights) is any file minicnn reads: minicnn or Keras .h5, PyTorch .pth, .safetensors or
ONNX .onnx. The map file is .npy or .npz (one array, or name it with --key) in any of the layouts NCHW
(PyTorch), NHWC (Keras/TensorFlow) or NHW, or the same without N for one image; --layout decides
when the shape alone does not. Reported: max |minicnn - map| / max |map|, the fraction of entries
beyond --tol, Spearman's rank correlation, and a picture of where the largest differences are.
Exit code 0 when the max relative difference is <= --tol, 1 when it is not, 2 on bad input.
--against keras supports gradient, saliency, gradient_x_input and grad_cam, and runs Keras in float32
(its layers are float32), so it is refused with --float64; --against captum runs in float64 then.

methods and the Captum call that makes the same map:
  saliency          Saliency(model).attribute(x, target=t)            (|grad|; max over C is taken)
  gradient          Saliency(model).attribute(x, target=t, abs=False)
  gradient_x_input  InputXGradient(model).attribute(x, target=t)
  deconvnet         Deconvolution(model).attribute(x, target=t)
  guided            GuidedBackprop(model).attribute(x, target=t)
  grad_cam          LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=True)
  occlusion         Occlusion(model).attribute(x, sliding_window_shapes=(C, s, s),
                                               strides=(1, st, st), baselines=0, target=t)

examples:
  minicnn verify --weights vgg16-397923af.pth --image cat.jpg --method guided --map captum_guided.npy
  minicnn verify --weights vgg16-397923af.pth --image cat.jpg --method deconvnet --against captum
  minicnn verify --weights model.onnx --input x.npy --method gradient --map grads.npz --key grad
"""

METHOD_CHOICES = ("saliency", "gradient", "gradient_x_input", "deconvnet", "guided", "grad_cam", "occlusion")


def add_arguments(parser) -> None:
    add_common(parser, layer="")
    parser.add_argument("--method", choices=METHOD_CHOICES, default="saliency", help="default: saliency")
    parser.add_argument(
        "--map", type=existing_file, default=None, metavar="FILE",
        help="the map computed elsewhere (.npy or .npz), for the same model file and images",
    )  # fmt: skip
    parser.add_argument(
        "--against", choices=("captum", "keras"), default=None,
        help="compute the reference map now with Captum (torch) or Keras, from the same weights",
    )  # fmt: skip
    parser.add_argument("--key", default=None, help="the array's name inside a .npz map file")
    parser.add_argument(
        "--layout", default="auto", choices=LAYOUTS, help="NCHW, NHWC, NHW, CHW, HWC, HW (default: auto)"
    )
    parser.add_argument(
        "--input", type=existing_file, default=None, metavar="FILE",
        help="network input (N, C, H, W) or (C, H, W) as .npy, already preprocessed (instead of --image)",
    )  # fmt: skip
    parser.add_argument("--tol", type=positive_float, default=1e-3, help="relative tolerance (default: 1e-3)")
    parser.add_argument(
        "--float64", action="store_true",
        help="run minicnn and --against captum in float64 (refused with --against keras: Keras is float32)",
    )  # fmt: skip
    parser.add_argument("--size", type=positive_int, default=8, help="occluder size in pixels (default: 8)")
    parser.add_argument("--stride", type=positive_int, default=4, help="occluder stride (default: 4)")
    parser.add_argument(
        "--fill", type=occluder_fill, default="zero", help="occluder value: zero, grey, mean or a number"
    )


def _inputs(args, net):
    """(x (N, C, H, W) of the network's dtype, names, display images or None, the preprocessing
    line or None for --input, which is network input already)."""
    from minicnn.cli.context import preprocessing
    from minicnn.cli.inputs import load_inputs

    if args.input is None:
        how = preprocessing(net, args)
        inputs = load_inputs(args, net, count=1)
        return inputs.x, inputs.names, inputs.display, how
    try:
        x = np.load(args.input, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise MinicnnError(f"--input {args.input}: not a readable .npy file ({exc})") from None
    if not isinstance(x, np.ndarray) or x.ndim not in (3, 4) or not np.issubdtype(x.dtype, np.floating):
        raise MinicnnError(f"--input {args.input}: expected a float (N, C, H, W) or (C, H, W) array")
    x = net.xp.asarray(np.ascontiguousarray(x if x.ndim == 4 else x[None], dtype=net.dtype))
    names = [f"{args.input.stem}_{i}" for i in range(len(x))] if len(x) > 1 else [args.input.stem]
    return x, names, None, None


def check_options(args) -> None:
    """The checks that need two options at once, before the model is read (single values are
    checked by the parser)."""
    from minicnn.tools.keras_reference import METHODS as KERAS_METHODS

    if (args.map is None) == (args.against is None):
        raise MinicnnError("give the reference as --map FILE or compute it with --against captum|keras")
    if args.input is not None and args.image is not None:
        raise MinicnnError("give --image or --input, not both")
    if args.against == "keras" and args.float64:
        raise MinicnnError(
            "--float64 with --against keras: Keras computes the reference in float32, so the comparison "
            "would not be float64; drop --float64, or use --against captum (float64)"
        )
    if args.against == "keras" and args.method not in KERAS_METHODS:
        raise MinicnnError(
            f"--against keras computes {', '.join(KERAS_METHODS)}, not {args.method} (Keras has no "
            "DeconvNet or guided rule); use --against captum or a --map file"
        )


def _say_occlusion_work(report, net, x, args) -> None:
    """Occlusion runs one forward pass per occluder position and image, in minicnn and again in the
    reference: say how many, and about how long, before they start (a forward pass is counted as a
    whole forward + backward pass: an upper bound)."""
    from minicnn.cli.context import say_work
    from minicnn.tools.occlusion import grid_positions

    n, _, h, w = x.shape
    rows, cols = (len(grid_positions(side, args.size, args.stride)) for side in (h, w))
    runs = 2 if args.against is not None else 1
    what = f"occlusion: {rows * cols} positions x {n} images"
    what += " x 2 (minicnn and the reference)" if runs == 2 else ""
    say_work(report, net, what, rows * cols * n * runs, "a larger --stride", shape=tuple(x.shape[1:]))


def run(args) -> Report:
    from minicnn.cli.classes import parse_target
    from minicnn.cli.loading import load_network, move_network
    from minicnn.cli.output import open_output
    from minicnn.render.difference import difference_figure
    from minicnn.tools.targets import resolve_targets
    from minicnn.tools.verify import read_map, verify

    check_options(args)
    out = open_output(args, "verify")
    if args.map is not None:
        reference = read_map(args.map, args.key)  # a bad map file fails before the model is read
    net = load_network(args.weights, "cpu")
    if args.float64:
        net.astype(np.float64)  # on the host, before the move: astype keeps the device
    net = move_network(net, args.device)
    x, names, _, how = _inputs(args, net)
    scores = net.run(x).output()
    targets = resolve_targets(parse_target(net, args.target), scores)
    fill = args.fill
    if args.method == "occlusion":  # the one long method: one forward pass per occluder position
        _say_occlusion_work(out.report, net, x, args)
    if args.against == "captum":
        from minicnn.tools.captum_reference import captum_map

        reference = captum_map(net, x, args.method, targets, args.layer, args.size, args.stride, fill)
    elif args.against == "keras":
        from minicnn.tools.keras_reference import keras_map

        reference = keras_map(net, x, args.method, targets, args.layer)
    result = verify(
        net, x, reference, args.method, [int(t) for t in targets], args.tol, args.layout,
        layer=args.layer, size=args.size, stride=args.stride, fill=fill,
    )  # fmt: skip
    report = out.report
    source = f"--against {args.against}" if args.against else str(args.map)
    report.say(f"minicnn verify: {Path(args.weights).name}, {len(x)} image(s), {args.method} vs {source}")
    if how is not None:
        report.say(f"  {how}")
        report.settings["preprocess"] = net.meta["preprocess"]
    for line in result.lines():
        report.say(line)
    report.numbers.update(
        {
            "max relative difference": result.max_rel_diff,
            "fraction beyond tolerance": result.fraction_beyond,
            "rank correlation": result.rank_correlation,
            "tolerance": result.tol,
        }
    )
    n = result.worst[0]
    out.png(
        f"{names[n]}_{args.method}_difference.png",
        difference_figure(result.ours[n], result.reference[n], result.diff[n], result.worst[1:],
                          f"{names[n]}: {args.method}, max rel. diff {result.max_rel_diff:.3g}"),
    )  # fmt: skip
    out.arrays(
        f"{args.method}_verify.npz",
        {"minicnn": result.ours, "reference": result.reference, "difference": result.diff},
        {"model": str(args.weights), "method": args.method, "reference": source, "tol": args.tol},
    )  # with --save-arrays: both maps in minicnn's layout, and |difference| per pixel
    report.exit_code = 0 if result.agree else 1
    return report
