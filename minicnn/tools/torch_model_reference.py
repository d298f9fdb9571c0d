"""The user's own torch model as verify's reference (``verify --torch-model FILE.py:FUNCTION``).

``--against captum`` otherwise rebuilds the torch model from minicnn's own reading of the file, so
a loader mistake would appear on both sides. Here the reference model is the one the user's code
builds: FILE.py is imported and FUNCTION() called, and must return a ``torch.nn.Module`` (its
weights loaded by that code). It is the user's code, so it runs in a child process
(``io/child.run_in_child``): an exception, a crash or a hang there is one line, and the parent
never imports it. The child computes the reference map with one framework:

    captum     Captum (Kokhlikyan et al. 2020): the seven methods of tools/verify.py
    zennit     Zennit (Anders et al. 2021): gradient, saliency, gradient_x_input (Gradient
               attributor), guided (its GuidedBackprop composite), deconvnet (ReLUDeconvNet at
               every nn.ReLU)
    grad-cam   pytorch-grad-cam (Gildenblat 2021): grad_cam (GradCAM at the layer, kept at the
               layer's size; the library scales each map to 0..1) and guided
               (GuidedBackpropReLUModel, one image per call, as the library computes it)

Zennit and pytorch-grad-cam import torchvision for a few names (ResNet block classes, transforms);
where torchvision is not installed the child puts stand-ins for those names in place before
importing them, as the tests do (tests/frameworks.py), since no model here is an instance of them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from minicnn.errors import TORCH_CPU_INSTALL, MinicnnError

FRAMEWORKS = ("captum", "zennit", "grad-cam")
#: the methods each framework computes here
METHODS = {
    "captum": ("saliency", "gradient", "gradient_x_input", "deconvnet", "guided", "grad_cam", "occlusion"),
    "zennit": ("saliency", "gradient", "gradient_x_input", "deconvnet", "guided"),
    "grad-cam": ("grad_cam", "guided"),
}
#: what to install for each framework (besides torch)
INSTALL = {
    "captum": "pip install captum",
    "zennit": "pip install --no-deps zennit",
    "grad-cam": "pip install --no-deps grad-cam ttach opencv-python-headless",
}
#: seconds the child may take (the user's model, the framework's start-up and the map)
TIMEOUT = 1800.0


def parse_spec(text: str) -> tuple[Path, str]:
    """ "FILE.py:FUNCTION" -> (the file, the function's name); one MinicnnError when it is not that."""
    path, sep, function = str(text).rpartition(":")
    if not sep or not path.endswith(".py") or not function.isidentifier():
        raise MinicnnError(
            f"--torch-model must be FILE.py:FUNCTION (a function returning a torch.nn.Module), got {text!r}"
        )
    if not Path(path).is_file():
        raise MinicnnError(f"--torch-model: {path} not found")
    return Path(path).resolve(), function


def check(against: str, method: str) -> None:
    """One MinicnnError when ``against`` does not compute ``method`` here."""
    if against not in METHODS:
        raise MinicnnError(f"--torch-model works with --against {', '.join(FRAMEWORKS)}, not {against}")
    if method not in METHODS[against]:
        raise MinicnnError(f"--against {against} computes {', '.join(METHODS[against])} here, not {method}")


def torch_model_map(spec: str, x, method: str, targets, against: str = "captum", layer=None, size: int = 8,
                    stride: int = 4, base=None, progress: bool = False) -> np.ndarray:  # fmt: skip
    """See torch_model_maps: the map of one set of targets."""
    return torch_model_maps(spec, x, method, [targets], against, layer, size, stride, base, progress)[0]


def torch_model_maps(spec: str, x, method: str, target_sets, against: str = "captum", layer=None,
                     size: int = 8, stride: int = 4, base=None, progress: bool = False) -> list:  # fmt: skip
    """The reference map of the user's model (see the module docstring), float64, in the
    framework's layout: (N, C, H, W) for the gradient family and occlusion, (N, 1, h, w) for
    Captum's Grad-CAM, (N, h, w) for pytorch-grad-cam's, (N, H, W, C) for its guided map.

    x: (N, C, H, W) float32 or float64 (the model runs in that type); target_sets: a list of (N,)
    ints, one map each, computed one after the other on ONE model and ONE input tensor (as a user
    calls a framework repeatedly: ``verify --repeat``); layer: Grad-CAM's layer as a submodule
    name of the user's model (``model.get_submodule``); base: occlusion's fill (N, C)."""
    check(against, method)
    path, function = parse_spec(spec)
    with tempfile.TemporaryDirectory(prefix="minicnn-torch-model-") as folder:
        folder = Path(folder)
        x = np.ascontiguousarray(x)
        base = np.zeros((len(x), x.shape[1])) if base is None else np.asarray(base, np.float64)
        np.savez(folder / "in.npz", x=x, targets=np.asarray(target_sets, np.int64), base=base)
        settings = {"path": str(path), "function": function, "method": method, "against": against,
                    "layer": layer, "size": size, "stride": stride, "progress": progress}  # fmt: skip
        (folder / "settings.json").write_text(json.dumps(settings))
        from minicnn.io.child import run_in_child

        echo = progress and method == "occlusion"  # Captum's progress bar: the one long map
        run_in_child(
            "minicnn.tools.torch_model_reference:child", folder, f"--torch-model {spec}", TIMEOUT, echo
        )
        with np.load(folder / "out.npz", allow_pickle=False) as out:
            return [out[f"map{i}"].astype(np.float64) for i in range(len(target_sets))]


# -- in the child ---------------------------------------------------------------------------------
def child(folder: str) -> None:
    """The child's work: the user's model, the framework's map, saved as out.npy in ``folder``."""
    folder = Path(folder)
    settings = json.loads((folder / "settings.json").read_text())
    with np.load(folder / "in.npz", allow_pickle=False) as data:
        x, targets, base = data["x"], data["targets"], data["base"]
    try:
        import torch
    except ImportError:
        raise MinicnnError(f"needs torch: {TORCH_CPU_INSTALL}") from None
    model = user_model(torch, Path(settings["path"]), settings["function"])
    dtype = torch.float64 if x.dtype == np.float64 else torch.float32
    model = model.to(dtype).eval()
    xt = torch.from_numpy(x).to(dtype)
    against, method = settings["against"], settings["method"]
    module = None
    if method == "grad_cam":
        try:
            module = model.get_submodule(settings["layer"])
        except AttributeError:
            raise MinicnnError(
                f"the model has no submodule {settings['layer']!r} (Grad-CAM's layer)"
            ) from None
    images = [xt[i : i + 1] for i in range(len(xt))]  # pytorch-grad-cam's guided map: one image a call
    maps = {}
    for i, t in enumerate(targets):  # one model, one input tensor, call after call
        if against == "captum":
            out = _captum(torch, model, xt, method, t, module, base, settings)
        elif against == "zennit":
            out = _zennit(torch, model, xt, method, t)
        else:
            out = _grad_cam(torch, model, xt, images, method, t, module)
        maps[f"map{i}"] = np.asarray(out, dtype=np.float64)
    np.savez(folder / "out.npz", **maps)


def user_model(torch, path: Path, function: str):
    """FUNCTION() of the user's FILE.py: a torch.nn.Module, or one MinicnnError saying what it did."""
    import importlib.util
    import sys

    where = f"{path.name}:{function}"
    sys.path.insert(0, str(path.parent))  # the user's file may import its neighbours
    try:
        spec = importlib.util.spec_from_file_location("minicnn_user_model", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, function, None)):
            raise MinicnnError(f"{path.name} has no function {function}")
        model = getattr(module, function)()
    except MinicnnError:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's code: whatever it raises is one line
        text = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise MinicnnError(f"{where} raised {type(exc).__name__}: {text}") from None
    if not isinstance(model, torch.nn.Module):
        raise MinicnnError(f"{where} returned {type(model).__name__}, expected a torch.nn.Module")
    return model


def _needs(against: str, error: ImportError):
    return MinicnnError(f"--against {against} needs {INSTALL[against]} ({error})")


def _captum(torch, model, xt, method, targets, module, base, settings):
    try:
        from captum import attr
    except ImportError as exc:
        raise _needs("captum", exc) from None
    import warnings

    from minicnn.tools.captum_reference import captum_on_module

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return captum_on_module(torch, attr, model, xt, method, targets, module, base,
                                settings["size"], settings["stride"], settings["progress"])  # fmt: skip


def stand_in_torchvision(torch) -> None:
    """Where torchvision is not installed: stand-in modules for the names Zennit and
    pytorch-grad-cam import from it (ResNet's two block classes, three transforms, ``resize``),
    none of which the maps computed here use. A stand-in already in place (the tests') is completed."""
    import importlib.util
    import sys
    import types

    present = sys.modules.get("torchvision")
    if present is None and importlib.util.find_spec("torchvision") is not None:
        return  # the real one
    if present is not None and getattr(present, "__version__", "") != "0+stand-in":
        return

    def module(name, **names):
        m = sys.modules.get(name) or types.ModuleType(name)
        m.__path__ = []
        for key, value in names.items():
            if not hasattr(m, key):
                setattr(m, key, value)
        sys.modules[name] = m
        return m

    def unavailable(*args, **kwargs):
        raise MinicnnError("torchvision is not installed (a stand-in was imported)")

    package = module("torchvision", __version__="0+stand-in")
    blocks = {n: type(n, (torch.nn.Module,), {}) for n in ("BasicBlock", "Bottleneck")}
    package.models = module("torchvision.models")
    package.models.resnet = module("torchvision.models.resnet", **blocks)
    transforms = {n: type(n, (), {}) for n in ("Compose", "Normalize", "ToTensor")}
    package.transforms = module("torchvision.transforms", **transforms)
    package.transforms.functional = module("torchvision.transforms.functional", resize=unavailable)


def _zennit(torch, model, xt, method, targets):
    stand_in_torchvision(torch)
    try:
        from zennit.attribution import Gradient
        from zennit.composites import GuidedBackprop, LayerMapComposite
        from zennit.rules import ReLUDeconvNet
    except ImportError as exc:
        raise _needs("zennit", exc) from None
    composite = None
    if method == "guided":
        composite = GuidedBackprop()
    elif method == "deconvnet":
        composite = LayerMapComposite(layer_map=[(torch.nn.ReLU, ReLUDeconvNet())])
    with torch.no_grad():
        classes = model(xt).shape[1]
    onehot = torch.eye(classes, dtype=xt.dtype)[torch.as_tensor(np.asarray(targets))]
    with Gradient(model=model, composite=composite) as attributor:
        _, relevance = attributor(xt, onehot)
    g = relevance.detach().numpy()
    if method == "gradient_x_input":
        return g * xt.detach().numpy()
    return np.abs(g) if method == "saliency" else g


def _grad_cam(torch, model, xt, images, method, targets, module):
    stand_in_torchvision(torch)
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.guided_backprop import GuidedBackpropReLUModel
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError as exc:
        raise _needs("grad-cam", exc) from None
    if method == "guided":  # the library explains image 0 of what it is given: one image per call
        # NOTE: each image is the same tensor in every call (``images``), as a user's loop passes it:
        # the library sets requires_grad on it and reads .grad without zeroing it, so a second call
        # returns the sum of both calls' gradients (github.com/jacobgil/pytorch-grad-cam/issues/401),
        # which ``verify --repeat`` is there to show. np.array copies: the library's map is a view of .grad.
        maps = [
            np.array(GuidedBackpropReLUModel(model, device="cpu")(images[i], int(t)))
            for i, t in enumerate(targets)
        ]
        return np.stack(maps)  # (N, H, W, C)

    class AtTheLayer(GradCAM):
        def get_target_width_height(self, input_tensor):
            return None  # keep the layer's h x w: minicnn compares Grad-CAM there

    with AtTheLayer(model=model, target_layers=[module]) as cam:
        return cam(input_tensor=xt, targets=[ClassifierOutputTarget(int(t)) for t in targets])
