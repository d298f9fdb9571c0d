"""The framework atlas: every method x framework x model against minicnn in float64, with verify's
diagnosis of each disagreement, written to benchmarks/ATLAS.md.

    python benchmarks/framework_atlas.py            # about 2 minutes on 2 cores; rewrites ATLAS.md

Frameworks: Captum (the seven methods of verify), Zennit (gradient, gradient x input, guided,
DeconvNet), pytorch-grad-cam (Grad-CAM at the layer's size, guided backpropagation one image per
call, and once on a whole batch), Keras 3 on the torch backend (gradient, Grad-CAM; float32 only:
its matmul computes float64 in float32). tf-keras-vis is not in the atlas: it needs TensorFlow,
which has no build for this machine's Python/torch pins.

Models (float64, 32x32 input, random weights, seeded): a torchvision-layout VGG with and without
BatchNorm, a chain with two consecutive ReLUs, the VGG with in-place ReLUs, the VGG with F.relu in
its classifier, a chain that starts with a ReLU (for Captum's state between methods), and a
torchvision-layout ResNet-18 (its BasicBlocks call one nn.ReLU module twice); batches of 1 and 8,
and repeated calls on one input tensor. Each reference runs on the torch model itself (not on a
mirror of minicnn's reading), except the minicnn-first models (consecutive ReLUs, ReLU first), whose
torch model is minicnn's torch mirror by construction.

A cell agrees when max |minicnn - framework| / max |framework| <= TOL (1e-6; the BatchNorm VGG 1e-5,
since minicnn folds BatchNorm at load in float32); else it shows the first explanation of verify's
diagnosis (tools/diagnosis.py).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_models as tm  # noqa: E402
from resnet_torch import torch_resnet  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn.tools.captum_reference import torch_mirror  # noqa: E402
from minicnn.tools.torch_model_reference import stand_in_torchvision  # noqa: E402
from minicnn.tools.verify import verify  # noqa: E402

OUT = Path(__file__).with_name("ATLAS.md")
SIZE = 32
TOL = 1e-6
CAPTUM = ("gradient", "saliency", "gradient_x_input", "deconvnet", "guided", "grad_cam", "occlusion")
ZENNIT = ("gradient", "gradient_x_input", "deconvnet", "guided")
GRADCAM = ("grad_cam", "guided")
KERAS = ("gradient", "grad_cam")

warnings.simplefilter("ignore")
stand_in_torchvision(torch)


# -- models: (minicnn net float64, torch model float64, Grad-CAM layer name, tol) -------------------
def from_torch(model, folder, name, tol=TOL):
    path = tm.save(model, folder / f"{name}.pth", "zip")
    return mc.load(path).astype(np.float64), model.to(torch.float64).eval(), tol


def functional_relu():
    class Functional(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.relu(x)

    return Functional()


def minicnn_first(layers):
    net = mc.Sequential(layers, meta={"preprocess": "none", "input_shape": [3, SIZE, SIZE]}, seed=5)
    net = net.astype(np.float64)
    return (
        net,
        torch_mirror(net).requires_grad_(True),
        TOL,
    )  # as a user's model: parameters that take gradients


def models(folder):
    vgg = tm.torchvision_vgg(bn=False)
    out = {
        "vgg": from_torch(vgg, folder, "vgg"),
        "vgg-bn": from_torch(tm.torchvision_vgg(bn=True), folder, "bn", 1e-5),
    }
    inplace = tm.torchvision_vgg(bn=False)
    for m in inplace.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = True
    out["inplace-relu"] = (out["vgg"][0], inplace.to(torch.float64).eval(), TOL)
    functional = tm.torchvision_vgg(bn=False)
    functional.classifier[1], functional.classifier[4] = functional_relu(), functional_relu()
    out["F.relu"] = (out["vgg"][0], functional.to(torch.float64).eval(), TOL)
    out["relu-relu"] = minicnn_first([
        mc.Conv2D(3, 8, 3, padding=1, name="c1"), mc.ReLU(name="r1"), mc.ReLU(name="r2"),
        mc.MaxPool2D(2, name="p1"),
        mc.Conv2D(8, 8, 3, padding=1, name="c2"), mc.ReLU(name="r3"), mc.MaxPool2D(2, name="p2"),
        mc.Flatten(name="f"), mc.Dense(8 * 8 * 8, 10, name="fc"),
    ])  # fmt: skip
    out["relu-first"] = minicnn_first([
        mc.ReLU(name="r0"), mc.Conv2D(3, 8, 3, padding=1, name="c1"), mc.ReLU(name="r1"),
        mc.MaxPool2D(2, name="p1"),
        mc.Flatten(name="f"), mc.Dense(8 * 16 * 16, 10, name="fc"),
    ])  # fmt: skip
    out["resnet18"] = from_torch(torch_resnet("resnet18", classes=10), folder, "resnet18")
    return out


# -- references -------------------------------------------------------------------------------------
def gradcam_module(net, model, x):
    from minicnn.tools.cam import gradcam_layer

    name = gradcam_layer(net, None, tuple(x.shape[1:]))
    return name, (model.get_submodule(name) if isinstance(model, torch.nn.Module) and not _is_mirror(model)
                  else model[net.index(name)])  # fmt: skip


def _is_mirror(model):
    return type(model).__name__ == "GraphMirror" or isinstance(model, torch.nn.Sequential)


def captum(net, model, x, method, targets, xt=None):
    from captum import attr

    from minicnn.tools.captum_reference import captum_on_module
    from minicnn.tools.occlusion import fill_values

    xt = torch.from_numpy(x) if xt is None else xt
    module = gradcam_module(net, model, x)[1] if method == "grad_cam" else None
    base = fill_values(net, x, "zero") if method == "occlusion" else None
    return captum_on_module(torch, attr, model, xt, method, targets, module, base, size=8, stride=8)


def zennit(net, model, x, method, targets):
    from minicnn.tools.torch_model_reference import _zennit

    return _zennit(torch, model, torch.from_numpy(x), method, targets)


def grad_cam(net, model, x, method, targets):
    from minicnn.tools.torch_model_reference import _grad_cam

    xt = torch.from_numpy(x)
    module = gradcam_module(net, model, x)[1] if method == "grad_cam" else None
    images = [xt[i : i + 1].clone() for i in range(len(xt))]
    return _grad_cam(torch, model, xt, images, method, targets, module)


def keras(net, model, x, method, targets):
    import copy

    from minicnn.tools.keras_reference import keras_map

    narrow = copy.deepcopy(net).astype(np.float32)
    return keras_map(narrow, x.astype(np.float32), method, targets)


FRAMEWORKS = {"captum": (captum, CAPTUM), "zennit": (zennit, ZENNIT), "grad-cam": (grad_cam, GRADCAM),
              "keras": (keras, KERAS)}  # fmt: skip


def cell(net, model, x, targets, framework, method, tol):
    """(verdict text, explanation or None, max relative difference)."""
    import copy

    fn = FRAMEWORKS[framework][0]
    model = copy.deepcopy(
        model
    )  # each cell its own model: a framework that changes the model (below) leaks no state
    try:
        ref = fn(net, model, x, method, targets)
    except Exception as exc:  # noqa: BLE001 - a framework that fails on a model is a finding too
        return f"fails: {type(exc).__name__}", None, float("nan")
    tol = 1e-4 if framework == "keras" else tol  # Keras computes in float32
    try:
        result = verify(net, x, ref, method, targets, tol=tol, size=8, stride=8, fill="zero")
    except mc.MinicnnError as exc:  # e.g. an all-zero map: nothing to compare
        return f"fails: {str(exc).split(':')[0][:48]} (map {tuple(np.shape(ref))})", None, float("nan")
    if result.agree:
        return "agree", None, result.max_rel_diff
    first = result.diagnosis[0] if result.diagnosis else None
    return ("DISAGREE: " + (first.cause if first else "unexplained")), first, result.max_rel_diff


# -- special rows: batch of 8 through pytorch-grad-cam, state between calls ----------------------------
def gradcam_guided_batch(net, model, x, targets):
    """pytorch-grad-cam's GuidedBackpropReLUModel given the whole batch: what comes back."""
    from pytorch_grad_cam.guided_backprop import GuidedBackpropReLUModel

    out = GuidedBackpropReLUModel(model, device="cpu")(torch.from_numpy(x).clone(), int(targets[0]))
    ours = verify(net, x[:1], out[None], "guided", targets[:1], tol=TOL)
    return out.shape, ours.max_rel_diff


def shared_relu_after_guided(net, model, x, targets):
    """pytorch-grad-cam's GuidedBackpropReLUModel, then Captum's LayerGradCam on the same model
    object: the shape of the map Captum returns (minicnn's: (N, 1, h, w))."""
    import copy

    from captum import attr
    from pytorch_grad_cam.guided_backprop import GuidedBackpropReLUModel

    model = copy.deepcopy(model)
    GuidedBackpropReLUModel(model, device="cpu")(torch.from_numpy(x[:1]).clone(), int(targets[0]))
    relus = {id(m) for m in model.modules() if isinstance(m, torch.nn.ReLU)}
    name = gradcam_module(net, model, x)[0]
    out = attr.LayerGradCam(model, model.get_submodule(name)).attribute(
        torch.from_numpy(x), target=list(targets)
    )
    return len(relus), tuple(out.shape)


def captum_stale(net, model, x, targets):
    """Captum: Deconvolution, then GuidedBackprop on the SAME input tensor (a model starting with a ReLU)."""
    from captum import attr

    xt = torch.from_numpy(x)
    attr.Deconvolution(torch_mirror(net)).attribute(xt, target=list(targets))
    guided = attr.GuidedBackprop(torch_mirror(net)).attribute(xt, target=list(targets)).detach().numpy()
    return verify(net, x, guided, "guided", targets, tol=TOL)


def repeats(net, model, x, targets, framework, method):
    """(difference between two identical calls, difference between two classes), relative."""
    from minicnn.tools.torch_model_reference import _grad_cam

    xt = torch.from_numpy(x)
    other = [(t + 1) % 10 for t in targets]
    if framework == "captum":
        maps = [captum(net, model, x, method, t, xt) for t in (targets, targets, other)]
    elif framework == "zennit":
        maps = [zennit(net, model, x, method, t) for t in (targets, targets, other)]
    else:
        images = [xt[i : i + 1].clone() for i in range(len(xt))]
        module = gradcam_module(net, model, x)[1] if method == "grad_cam" else None
        maps = [np.asarray(_grad_cam(torch, model, xt, images, method, t, module), np.float64)
                for t in (targets, targets, other)]  # fmt: skip
    scale = np.abs(maps[0]).max()
    return float(np.abs(maps[1] - maps[0]).max() / scale), float(np.abs(maps[2] - maps[0]).max() / scale)


REPRODUCERS = {
    (
        "captum",
        "deconvnet",
        "relu-relu",
    ): "captum.attr.Deconvolution(nn.Sequential(conv, nn.ReLU(), nn.ReLU(), ...))"
    ".attribute(x, target=t)  # = DeconvNet with the guided rule at the ReLU pair",
    (
        "captum",
        "guided",
        "F.relu",
    ): "model.classifier[1] = module calling F.relu; captum.attr.GuidedBackprop(model)"
    ".attribute(x, target=t)  # F.relu keeps the gradient rule",
    (
        "captum",
        "deconvnet",
        "F.relu",
    ): "the same model; captum.attr.Deconvolution(model).attribute(x, target=t)",
    (
        "zennit",
        "guided",
        "F.relu",
    ): "zennit.attribution.Gradient(model, composite=zennit.composites.GuidedBackprop())"
    "(x, onehot)  # the composite maps nn.ReLU modules only",
    (
        "zennit",
        "deconvnet",
        "F.relu",
    ): "Gradient(model, composite=LayerMapComposite([(nn.ReLU, ReLUDeconvNet())]))(x, onehot)",
    ("grad-cam", "grad_cam", None): "pytorch_grad_cam.GradCAM(model, target_layers=[layer])(x, targets)"
    "  # each map scaled to 0..1 (scale_cam_image)",
}


def reproducer(framework, method, model_name):
    return (
        REPRODUCERS.get((framework, method, model_name))
        or REPRODUCERS.get((framework, method, None))
        or (f"{framework} {method} on the atlas's {model_name} model (framework_atlas.py: models())")
    )


def main() -> None:
    start = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="atlas-"))
    rng = np.random.default_rng(0)
    table, findings, counts = [], [], {"agree": 0, "disagree": 0, "fails": 0}
    columns = [(f, m) for f, (_, ms) in FRAMEWORKS.items() for m in ms]
    for name, (net, model, tol) in models(folder).items():
        batches = (1, 8) if name in ("vgg", "resnet18") else (1,)
        for n in batches:
            x = mc.preprocess(tm.images(n, SIZE, seed=7), "torch", dtype=np.float64)
            if name.startswith("relu"):
                x = rng.standard_normal((n, 3, SIZE, SIZE))
            targets = [int(t) for t in (np.arange(n) * 3 + 1) % 10]
            row = []
            for framework, method in columns:
                if framework == "keras" and name in ("inplace-relu", "F.relu"):
                    row.append("-")  # Keras rebuilds minicnn's own reading: the torch pitfall is not there
                    continue
                verdict, first, diff = cell(net, model, x, targets, framework, method, tol)
                row.append(verdict)
                counts[
                    "agree" if verdict == "agree" else "fails" if verdict.startswith("fails") else "disagree"
                ] += 1
                if verdict != "agree":
                    findings.append((name, n, framework, method, diff, first))
            table.append((f"{name}, batch {n}", row))
            print(f"{name} batch {n}: {sum(v == 'agree' for v in row)} agree", flush=True)
    net, model, _ = models(folder)["vgg"]
    x8 = mc.preprocess(tm.images(8, SIZE, seed=7), "torch", dtype=np.float64)
    shape, diff = gradcam_guided_batch(net, model, x8, [1, 4, 7, 0, 3, 6, 9, 2])
    shared = shared_relu_after_guided(net, model, x8, [1, 4, 7, 0, 3, 6, 9, 2])
    stale_net, stale_model, _ = models(folder)["relu-first"]
    xs = rng.standard_normal((1, 3, SIZE, SIZE))
    stale = captum_stale(stale_net, stale_model, xs, [1])
    x1 = mc.preprocess(tm.images(1, SIZE, seed=7), "torch", dtype=np.float64)
    repeat_rows = [(f, m, *repeats(net, model, x1, [1], f, m))
                   for f, m in (("captum", "guided"), ("captum", "gradient"), ("zennit", "guided"),
                                ("grad-cam", "guided"), ("grad-cam", "grad_cam"))]  # fmt: skip
    seconds = time.perf_counter() - start
    write(table, columns, findings, counts, shape, diff, shared, stale, repeat_rows, seconds)
    print(f"wrote {OUT} ({counts['agree']} agree, {counts['disagree']} disagree, {counts['fails']} fail; "
          f"{seconds:.0f} s)")  # fmt: skip


def write(table, columns, findings, counts, shape, diff, shared, stale, repeat_rows, seconds) -> None:
    import platform

    import captum

    lines = [
        "# Framework atlas: minicnn against Captum, Zennit, pytorch-grad-cam and Keras",
        "",
        "Written by `python benchmarks/framework_atlas.py` (do not edit by hand); "
        f"{seconds:.0f} s on {platform.machine()}, Python {platform.python_version()}, "
        f"torch {torch.__version__}, "
        f"captum {captum.__version__}. Float64, 32x32 inputs, random seeded weights; a cell agrees when "
        f"max |minicnn - framework| / max |framework| <= {TOL:g} (Keras, float32: 1e-4; the BatchNorm VGG: "
        "1e-5). A disagreement shows the first cause of `minicnn verify`'s diagnosis.",
        "",
        f"**Counts: {counts['agree'] + counts['disagree'] + counts['fails']} cells, {counts['agree']} agree, "
        f"{counts['disagree']} disagree, {counts['fails']} fail.**",
        "",
    ]
    head = "| model | " + " | ".join(f"{f} {m}" for f, m in columns) + " |"
    lines += [head, "|" + "---|" * (len(columns) + 1)]
    lines += [f"| {name} | " + " | ".join(row) + " |" for name, row in table]
    lines += ["", "## Disagreements, diagnosed", ""]
    for name, n, framework, method, d, first in findings:
        why = f"{first.cause}: {first.detail} (residual {first.residual:.2g})" if first else "no named cause"
        lines.append(f"- **{framework} {method}, {name}, batch {n}** (max rel. difference {d:.3g}): {why}.  ")
        lines.append(f"  Reproducer: `{reproducer(framework, method, name)}`")
    lines += ["", "## Batches and state", ""]
    lines.append(f"- pytorch-grad-cam `GuidedBackpropReLUModel` given a batch of 8 returns one map of shape "
                 f"{tuple(shape)} (H, W, C): image 0's (max rel. difference to minicnn's image 0: "
                 f"{diff:.2g}); "
                 "the other 7 images are not explained.")  # fmt: skip
    lines.append(f"- pytorch-grad-cam `GuidedBackpropReLUModel` puts the model's ReLUs back as ONE "
                 f"`nn.ReLU()` instance ({shared[0]} distinct ReLU module(s) afterwards): Captum "
                 f"`LayerGradCam` at a ReLU of that model object then returns a map of shape {shared[1]} "
                 "(the last use of the shared module, in the classifier), not (8, 1, h, w). The atlas "
                 "gives each cell its own copy of the model.")  # fmt: skip
    first = stale.diagnosis[0] if stale.diagnosis else None
    lines.append(
        "- Captum `GuidedBackprop` after `Deconvolution` on the same input tensor, model starting with a "
        "ReLU: "
        + (
            f"DISAGREE {stale.max_rel_diff:.3g}, {first.cause}: {first.detail}"
            if not stale.agree
            else "agree"
        )
        + "."
    )
    lines += [
        "",
        "| framework | method | two identical calls differ by | two classes differ by |",
        "|---|---|---|---|",
    ]
    lines += [f"| {f} | {m} | {a:.3g} | {b:.3g} |" for f, m, a, b in repeat_rows]
    lines += [
        "",
        "Each row: three calls on one model and one input tensor (pytorch-grad-cam: the same one-image "
        "tensor per call, as a user's loop passes it), for the target twice, then for another class; "
        "relative to the first map.",
    ]
    accumulates = [a for f, m, a, _ in repeat_rows if (f, m) == ("grad-cam", "guided")]
    if accumulates and abs(accumulates[0] - 1) < 1e-6:
        lines.append(
            "pytorch-grad-cam's `GuidedBackpropReLUModel` never zeroes the input tensor's `.grad`: a second "
            "call on the same tensor returns the sum of both calls' gradients (twice the map; `minicnn "
            "verify --repeat` names it scale x2), and each map it returned is a view of that `.grad`, so "
            "maps kept from earlier calls change too (github.com/jacobgil/pytorch-grad-cam/issues/401)."
        )
    lines += [
        "",
        "tf-keras-vis: not in the atlas (it needs TensorFlow, not installable with these pins).",
        "",
    ]
    OUT.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
