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

INPUT_LAYOUTS = ("auto", "NCHW", "NHWC", "CHW", "HWC")

HELP = "check another framework's attribution map (Captum, tf-keras-vis, ...) against minicnn's"
EPILOG = """\
The model (--weights) is any file minicnn reads: minicnn or Keras .h5, PyTorch .pth, .safetensors or
ONNX .onnx. The map file is .npy or .npz (one array, or name it with --key) in any of the layouts NCHW
(PyTorch), NHWC (Keras/TensorFlow) or NHW, or the same without N for one image; --layout decides
when the shape alone does not. Reported: max |minicnn - map| / max |map|, the fraction of entries
beyond --tol, Spearman's rank correlation, and a picture of where the largest differences are.
Exit code 0 when the max relative difference is <= --tol, 1 when it is not, 2 on bad input.
--against keras supports gradient, saliency, gradient_x_input and grad_cam, in float32 only (Keras 3's
torch backend multiplies float64 tensors in float32, so --float64 is refused with it); --against
captum, and --torch-model with any --against, run in float64 with --float64. A float32
disagreement with a reference computed here is checked again in float64, and named "float32-ties"
when the float64 maps agree (random or untrained weights put many ReLU inputs and pooling windows
at ties, which rounding breaks differently on each side).
When the maps disagree, named hypotheses are tested and those that explain the difference printed
("explained: ..."), best first, with the residual each leaves; --json lists them as "diagnosis"
(causes: sign, abs, scale, channel-order, layout, preprocessing, target, softmax, method, relu-rule,
unhooked-relu, batch, stale-state, float32-ties; see minicnn/tools/diagnosis.py).

methods and the Captum call that makes the same map:
  saliency          Saliency(model).attribute(x, target=t)            (|grad|; max over C is taken)
  gradient          Saliency(model).attribute(x, target=t, abs=False)
  gradient_x_input  InputXGradient(model).attribute(x, target=t)
  deconvnet         Deconvolution(model).attribute(x, target=t)
  guided            GuidedBackprop(model).attribute(x, target=t)
  grad_cam          LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=True)
  occlusion         Occlusion(model).attribute(x, sliding_window_shapes=(C, s, s),
                                               strides=(1, st, st), baselines=0, target=t)

--torch-model FILE.py:FUNCTION makes your own torch model the reference instead of minicnn's reading of
--weights (so a loader mistake cannot appear on both sides): FUNCTION() returns a torch.nn.Module with
its weights loaded; it runs in a child process, where --against captum, zennit or grad-cam computes
the map (Zennit: gradient, saliency, gradient_x_input, deconvnet, guided; pytorch-grad-cam: grad_cam,
kept at the layer's size and scaled to 0..1 per image by the library, and guided).

examples:
  minicnn verify --weights vgg16-397923af.pth --image cat.jpg --method guided --map captum_guided.npy
  minicnn verify --weights vgg16-397923af.pth --image cat.jpg --method deconvnet --against captum
  minicnn verify --weights model.onnx --input x.npy --method gradient --map grads.npz --key grad
  minicnn verify --weights vgg16-397923af.pth --image cat.jpg --method guided --against zennit \
                 --torch-model my_models.py:vgg16_with_weights
"""


def add_arguments(parser) -> None:
    add_common(parser, layer="")
    from minicnn.tools.methods import choices
    from minicnn.tools.verify import verifiable

    parser.add_argument(
        "--method", choices=choices(verifiable()), default="saliency",
        help="default: saliency; --against captum: the methods below; any other with a --map file",
    )  # fmt: skip
    parser.add_argument(
        "--map", type=existing_file, default=None, metavar="FILE",
        help="the map computed elsewhere (.npy or .npz), for the same model file and images",
    )  # fmt: skip
    parser.add_argument(
        "--against", choices=("captum", "keras", "zennit", "grad-cam"), default=None,
        help="compute the reference map now: Captum (torch) or Keras from minicnn's reading of the same "
        "weights, or, with --torch-model, Captum, Zennit or pytorch-grad-cam on your own torch model",
    )  # fmt: skip
    parser.add_argument(
        "--torch-model", default=None, metavar="FILE.py:FUNCTION",
        help="your own torch model as the reference: FUNCTION() in FILE.py returns a torch.nn.Module "
        "with its weights (your code, run in a child process); with --against captum, zennit or grad-cam",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", action="store_true",
        help="statefulness check (with --against): the reference three times on one model and one input "
        "tensor, for the targets twice, then for each image's runner-up class; flags a map that changes "
        "between identical calls, or not at all between classes",
    )  # fmt: skip
    parser.add_argument("--key", default=None, help="the array's name inside a .npz map file")
    parser.add_argument(
        "--layout",
        default="auto",
        choices=LAYOUTS,
        help="the map's: NCHW, NHWC, NHW, CHW, HWC, HW (default: auto)",
    )
    parser.add_argument(
        "--input", type=existing_file, default=None, metavar="FILE",
        help="network input as .npy, already preprocessed (instead of --image), in --input-layout",
    )  # fmt: skip
    parser.add_argument(
        "--input-layout", default="auto", choices=INPUT_LAYOUTS,
        help="NCHW (PyTorch), NHWC (Keras), CHW or HWC; auto: the layout whose channel axis has the "
        "network's input channels (NCHW where both fit)",
    )  # fmt: skip
    parser.add_argument("--tol", type=positive_float, default=1e-3, help="relative tolerance (default: 1e-3)")
    parser.add_argument(
        "--float64", action="store_true",
        help="run minicnn and the reference (--against captum; --torch-model with any --against) in float64 "
        "(refused with --against keras, see below)",
    )  # fmt: skip
    parser.add_argument(
        "--size", type=positive_int, default=None,
        help="occluder size in pixels (default: as minicnn occlusion, scaled to the image)",
    )  # fmt: skip
    parser.add_argument(
        "--stride", type=positive_int, default=None, help="occluder stride (default: as minicnn occlusion)"
    )
    parser.add_argument(
        "--fill", type=occluder_fill, default="grey",
        help="occluder value: grey (default, as minicnn occlusion), zero, mean or a number",
    )  # fmt: skip


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
        raise MinicnnError(f"--input {args.input}: expected a float array in {', '.join(INPUT_LAYOUTS[1:])}")
    x = arrange_input(x, net.input_shape[0] if net.input_shape else None, args.input_layout, args.input)
    x = net.xp.asarray(np.ascontiguousarray(x, dtype=net.dtype))
    names = [f"{args.input.stem}_{i}" for i in range(len(x))] if len(x) > 1 else [args.input.stem]
    return x, names, None, None


def arrange_input(x, channels, layout: str, path) -> np.ndarray:
    """An --input array as (N, C, H, W): ``layout`` as given, or (auto) the first of NCHW, NHWC
    (CHW, HWC for one image) whose channel axis has the network's ``channels``."""
    names = [name for name in INPUT_LAYOUTS[1:] if len(name) == x.ndim] if layout == "auto" else [layout]
    for name in names:
        if len(name) != x.ndim:
            raise MinicnnError(
                f"--input {path}: shape {x.shape} has {x.ndim} axes, --input-layout {name} {len(name)}"
            )
        a = x if name.startswith("N") else x[None]
        a = a if "C" == name[-3] else np.moveaxis(a, -1, 1)
        if channels is None or a.shape[1] == channels or layout != "auto":
            return a
    raise MinicnnError(
        f"--input {path}: shape {x.shape} has {channels} channels in none of the layouts {', '.join(names)}"
    )


def check_options(args) -> None:
    """The checks that need two options at once, before the model is read (single values are
    checked by the parser)."""
    from minicnn.tools.keras_reference import METHODS as KERAS_METHODS
    from minicnn.tools.methods import canonical
    from minicnn.tools.verify import METHODS as CAPTUM_METHODS

    args.method = canonical(args.method)
    if (args.map is None) == (args.against is None):
        raise MinicnnError(
            "give the reference as --map FILE or compute it with --against captum|keras|zennit|grad-cam"
        )
    if args.input is not None and args.image is not None:
        raise MinicnnError("give --image or --input, not both")
    if args.repeat and args.against is None:
        raise MinicnnError(
            "--repeat computes the reference here: give --against (it has nothing to repeat with --map)"
        )
    if args.torch_model is not None:
        from minicnn.tools.torch_model_reference import check, parse_spec

        parse_spec(args.torch_model)
        if args.against is None:
            raise MinicnnError(
                "--torch-model needs --against captum, zennit or grad-cam (the framework to run on it)"
            )
        check(args.against, args.method)
    elif args.against in ("zennit", "grad-cam"):
        raise MinicnnError(
            f"--against {args.against} runs on your own torch model: give --torch-model FILE.py:FUNCTION"
        )
    if args.against == "captum" and args.method not in CAPTUM_METHODS:
        raise MinicnnError(
            f"--against captum computes {', '.join(CAPTUM_METHODS)}, not {args.method}; compare a --map file "
            "made by the other framework"
        )
    if args.against == "keras" and args.float64:
        raise MinicnnError(
            "--float64 with --against keras: Keras 3's torch backend multiplies float64 tensors in float32 "
            "(keras.ops.matmul promotes a pair of torch.float64 to float32), so its dense layers cannot give "
            "a float64 reference; drop --float64, or use --against captum"
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


def _occluder(report, args, x) -> None:
    """--size and --stride default to minicnn occlusion's (scaled to the image): said, and kept."""
    from minicnn.tools.occlusion import default_occluder

    size, stride = default_occluder(int(x.shape[2]))
    chosen = args.size is None or args.stride is None
    args.size = size if args.size is None else args.size
    args.stride = stride if args.stride is None else args.stride
    scaled = " (as minicnn occlusion: scaled to the image)" if chosen else ""
    report.say(f"  occluder {args.size}x{args.size}, stride {args.stride}, fill {args.fill}{scaled}")
    report.settings.update(size=args.size, stride=args.stride, fill=args.fill)


def _gradcam_layer(report, net, x, args) -> str:
    """Grad-CAM's layer; a conv layer given with --layer means the ReLU that reads it (as in the
    paper and in minicnn cam), and the switch is said."""
    from minicnn.tools.cam import gradcam_layer

    layer = gradcam_layer(net, args.layer, tuple(x.shape[1:]))
    if args.layer and layer != args.layer:
        report.say(
            f"  Grad-CAM at {layer}, the ReLU that reads {args.layer} (Selvaraju et al.'s rectified maps)"
        )
    elif not args.layer:
        report.say(f"  Grad-CAM at {layer} (the last convolutional layer's rectified maps)")
    return layer


def reference_map(net, x, args, targets, layer, progress: bool):
    """The reference map of --against, computed now (float64 where the network is float64)."""
    if args.torch_model is not None:
        from minicnn.backend import to_numpy
        from minicnn.tools.occlusion import fill_values
        from minicnn.tools.torch_model_reference import torch_model_map

        base = fill_values(net, x, args.fill) if args.method == "occlusion" else None
        return torch_model_map(args.torch_model, to_numpy(x), args.method, targets, args.against, layer,
                               args.size, args.stride, base, progress)  # fmt: skip
    if args.against == "captum":
        from minicnn.tools.captum_reference import captum_map

        return captum_map(
            net, x, args.method, targets, layer, args.size, args.stride, args.fill, progress=progress
        )
    from minicnn.tools.keras_reference import keras_map

    return keras_map(net, x, args.method, targets, layer)


def reference_maps(net, x, args, target_sets, layer, progress: bool) -> list:
    """The --against reference for each of ``target_sets``, one call after the other on one model
    and one input tensor where the framework is torch's (see ``captum_repeat``)."""
    if args.torch_model is not None:
        from minicnn.backend import to_numpy
        from minicnn.tools.occlusion import fill_values
        from minicnn.tools.torch_model_reference import torch_model_maps

        base = fill_values(net, x, args.fill) if args.method == "occlusion" else None
        return torch_model_maps(args.torch_model, to_numpy(x), args.method, target_sets, args.against, layer,
                                args.size, args.stride, base, progress)  # fmt: skip
    if args.against == "captum":
        from minicnn.tools.captum_reference import captum_repeat

        return captum_repeat(
            net, x, args.method, target_sets, layer, args.size, args.stride, args.fill, progress
        )
    return [reference_map(net, x, args, t, layer, progress) for t in target_sets]


def _repeat(report, net, x, args, targets, scores, layer, progress):
    """--repeat: (the first reference map, whether the framework looks stateful). Three calls: the
    targets, the targets again, each image's runner-up class."""
    from minicnn.backend import to_numpy

    s = np.asarray(to_numpy(scores), dtype=np.float64).copy()
    s[np.arange(len(s)), targets] = -np.inf
    other = [int(c) for c in s.argmax(axis=1)]
    first, again, runner_up = reference_maps(net, x, args, [targets, targets, other], layer, progress)
    scale = float(np.abs(first).max()) or 1.0
    repeat = float(np.abs(again - first).max() / scale)
    classes = float(np.abs(runner_up - first).max() / scale)
    stateful, insensitive = repeat > args.tol, classes <= args.tol
    report.say(
        f"repeat: the same call twice differs by {repeat:.3g}"
        + (": STATEFUL (the framework kept state between calls)" if stateful else " (no state kept)")
    )
    report.say(
        f"repeat: classes {targets} and runner-up {other} give maps that differ by {classes:.3g}"
        + (": the map does NOT change with the class" if insensitive else "")
    )
    report.numbers.update({"repeat difference": repeat, "class difference": classes})
    return first, again, stateful or insensitive


def _float64_check(net, x, args, targets, layer, progress: bool):
    """A float32 disagreement with a reference computed here: both sides again in float64. The
    explanation "float32-ties" (with the decisions float32 flipped) when they then agree, else None."""
    import copy

    from minicnn.tools.diagnosis import Explanation
    from minicnn.tools.diagnosis_maps import flipped_decisions
    from minicnn.tools.verify import verify

    wide = copy.deepcopy(net).astype(np.float64)
    x64 = wide.xp.asarray(np.asarray(to_host(x), dtype=np.float64))
    reference = reference_map(wide, x64, args, targets, layer, progress)
    result = verify(wide, x64, reference, args.method, targets, args.tol, layer=layer, size=args.size,
                    stride=args.stride, fill=args.fill, diagnose=False)  # fmt: skip
    if not result.agree:
        return None
    relu, pool = flipped_decisions(net, x)
    detail = (
        f"float32 rounding broke ties the other way on one side ({relu} ReLU signs and {pool} max-pool "
        f"switches differ from float64 in minicnn); in float64 both agree to {result.max_rel_diff:.2g}"
    )
    return Explanation("float32-ties", detail, result.max_rel_diff)


def to_host(x):
    from minicnn.backend import to_numpy

    return to_numpy(x)


def run(args) -> Report:
    from minicnn.cli.classes import parse_target, target_entries
    from minicnn.cli.loading import load_network, move_network
    from minicnn.cli.output import open_output
    from minicnn.render.difference import difference_figure
    from minicnn.tools.targets import resolve_targets
    from minicnn.tools.verify import read_map, verify

    check_options(args)
    out = open_output(args, "verify")
    report = out.report
    progress = not getattr(args, "no_progress", False)
    if args.map is not None:
        reference = read_map(args.map, args.key)  # a bad map file fails before the model is read
    net = load_network(args.weights, "cpu")
    if args.float64:
        net.astype(np.float64)  # on the host, before the move: astype keeps the device
    net = move_network(net, args.device)
    x, names, _, how = _inputs(args, net)
    source = f"--against {args.against}" if args.against else str(args.map)
    source += f" on --torch-model {args.torch_model}" if args.torch_model else ""
    report.say(f"minicnn verify: {Path(args.weights).name}, {len(x)} image(s), {args.method} vs {source}")
    if how is not None:
        report.say(f"  {how}")
        report.settings["preprocess"] = net.meta["preprocess"]
    scores = net.run(x).output()
    targets = [int(t) for t in resolve_targets(parse_target(net, args.target), scores)]
    layer = _gradcam_layer(report, net, x, args) if args.method == "grad_cam" else args.layer
    if args.method == "occlusion":  # the one long method: one forward pass per occluder position
        _occluder(report, args, x)
        _say_occlusion_work(report, net, x, args)
    flagged = False
    if args.repeat:
        reference, again, flagged = _repeat(report, net, x, args, targets, scores, layer, progress)
    elif args.against is not None:
        reference = reference_map(net, x, args, targets, layer, progress)
    result = verify(
        net, x, reference, args.method, targets, args.tol, args.layout,
        layer=layer, size=args.size or 8, stride=args.stride or 4, fill=args.fill, diagnose=False,
    )  # fmt: skip
    ties = None
    if not result.agree and args.against in ("captum", "zennit") and np.dtype(net.dtype) == np.float32:
        ties = _float64_check(net, x, args, targets, layer, progress)  # first: it settles the question
        result.diagnosis = [ties] if ties is not None else []
    if not result.agree and ties is None and not (result.transposed or result.single):  # said first
        from minicnn.cli.context import say_work
        from minicnn.tools.verify import explain

        passes = (3 * sum(m.is_rectifier for m in net.layers) + 30) * len(x)  # an upper estimate
        say_work(report, net, f"diagnosis: the hypotheses' maps of {len(x)} image(s)", passes,
                 "a smaller batch", shape=tuple(x.shape[1:]))  # fmt: skip
        result.diagnosis, result.closest = explain(net, x, args.method, targets, layer, result)
    for line in result.lines():
        report.say(line)
    if flagged and args.repeat:  # what the second identical call is, next to minicnn's map
        second = verify(net, x, again, args.method, targets, args.tol, args.layout, layer=layer,
                        size=args.size or 8, stride=args.stride or 4, fill=args.fill)  # fmt: skip
        for e in second.diagnosis:
            report.say(f"  second call: {e.line()}")
    report.model = str(args.weights)
    report.inputs = list(names)
    report.targets = target_entries(net, names, targets)
    report.methods.append(f"{args.method} (minicnn) vs {source}")
    report.settings.update(
        method=args.method, reference=source, tol=args.tol, layout=result.layout,
        dtype=str(np.dtype(net.dtype)), layer=layer, key=args.key, repeat=args.repeat,
    )  # fmt: skip
    report.diagnosis = [e.as_dict() for e in result.diagnosis]
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
    report.exit_code = 0 if result.agree and not flagged else 1
    return report
