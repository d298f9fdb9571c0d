"""Captum as the reference for ``verify --against captum``: the same network in torch.nn, the same
weights, the same input, and Captum's implementation of each method (Kokhlikyan et al. 2020).

``torch_mirror(net)`` builds a torch.nn.Sequential layer by layer (for a graph, a module that runs
the nodes in order, each given the outputs of the nodes it reads), each module the one the layer
declares (``Layer.torch_module``), and copies the weights (OIHW convolutions and (out, in) linear
weights are torch's own layouts; Flatten is (C, H, W) in both). It needs torch only, and is the one
torch mirror of the project: the tests compare the engine with it too (tests/torch_mirror.py).
``captum_map`` needs torch and captum (``errors.TORCH_CPU_INSTALL``, then ``pip install captum``);
both are imported only when asked for.
"""

from __future__ import annotations

import warnings

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import TORCH_CPU_INSTALL, MinicnnError
from minicnn.record import INPUT


def _torch(captum: bool = True):
    try:
        import torch

        if captum:
            import captum.attr  # noqa: F401
    except ImportError:
        if captum:
            needs = f"torch and captum: {TORCH_CPU_INSTALL}, then pip install captum"
        else:
            needs = f"torch: {TORCH_CPU_INSTALL}"
        raise MinicnnError(f"--against captum needs {needs}") from None
    return torch


def torch_mirror(net, dtype=None):
    """A torch module in eval mode equal to ``net``, on the CPU, in ``dtype`` (a torch dtype;
    default: net's), without gradients on its parameters. Module i (``model[i]``) is layer i's
    ``torch_module``: a torch.nn.Sequential for a chain, a ``graph_module`` for a graph."""
    torch = _torch(captum=False)
    if dtype is None:
        dtype = torch.float64 if np.dtype(net.dtype) == np.float64 else torch.float32
    modules = []
    for layer in net.layers:
        m = layer.torch_module(torch.nn).to(dtype)  # before copying, so float64 weights keep every bit
        with torch.no_grad():
            for key, value in layer.params.items():
                getattr(m, key).copy_(torch.from_numpy(np.ascontiguousarray(to_numpy(value))))
        modules.append(m)
    model = torch.nn.Sequential(*modules) if net.is_chain else graph_module(torch.nn, net, modules)
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def graph_module(nn, net, modules):
    """A torch.nn.Module running ``modules`` (one per layer of the graph ``net``, in its run order)
    as the graph does: each module is given the outputs of the nodes its layer reads
    (``net.inputs``); the last node's output is the module's output. Torch's autograd then adds
    the gradients where branches meet, as GraphRecord.backward does."""
    names = [layer.name for layer in net.layers]
    position = {INPUT: -1, **{name: i for i, name in enumerate(names)}}
    reads = [tuple(position[r] for r in net.inputs[name]) for name in names]

    class GraphMirror(nn.Module):
        def __init__(self):
            super().__init__()
            self.nodes = nn.ModuleList(modules)  # layer names hold dots, which torch refuses as keys

        def __getitem__(self, i):
            return self.nodes[i]

        def forward(self, x):
            outputs = {-1: x}
            for i, module in enumerate(self.nodes):
                outputs[i] = module(*(outputs[r] for r in reads[i]))
            return outputs[len(self.nodes) - 1]

    return GraphMirror()


def captum_map(net, x, method: str, targets, layer=None, size: int = 8, stride: int = 4, fill="zero",
               progress: bool = False, model=None):  # fmt: skip
    """Captum's map for ``method`` (see minicnn.tools.verify), in Captum's own layout:
    (N, C, H, W) for the gradient family and occlusion, (N, 1, h, w) for Grad-CAM; float64 NumPy.

    x: (N, C, H, W) network input; targets: (N,) ints (resolved by the caller, so that both sides
    explain the same class). progress: Captum's own progress bar (on stderr) for occlusion, the
    one long method. model: the torch module to explain (default: ``torch_mirror(net)``); its
    module ``model[i]`` is layer i's, for Grad-CAM's layer.
    """
    torch = _torch()
    from captum import attr

    with warnings.catch_warnings():  # "Setting backward hooks on ReLU activations", "did not require grad"
        warnings.simplefilter("ignore", UserWarning)
        return _attribute(torch, attr, net, x, method, targets, layer, size, stride, fill, progress, model)


def captum_repeat(net, x, method: str, target_sets, layer=None, size: int = 8, stride: int = 4, fill="zero",
                  progress: bool = False) -> list:  # fmt: skip
    """Captum's maps (as captum_map) for each of ``target_sets`` ((N,) ints each), computed one after
    the other on ONE torch module and ONE input tensor, as a user calls a framework repeatedly: a
    framework that keeps state between calls shows it here (``verify --repeat``)."""
    torch = _torch()
    from captum import attr

    from minicnn.tools.cam import gradcam_layer
    from minicnn.tools.occlusion import fill_values

    model = torch_mirror(net)
    dtype = torch.float64 if np.dtype(net.dtype) == np.float64 else torch.float32
    xt = torch.from_numpy(np.ascontiguousarray(to_numpy(x))).to(dtype)
    module = model[net.index(gradcam_layer(net, layer, tuple(x.shape[1:])))] if method == "grad_cam" else None
    base = fill_values(net, x, fill) if method == "occlusion" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return [
            captum_on_module(torch, attr, model, xt, method, t, module, base, size, stride, progress)
            for t in target_sets
        ]


def _attribute(torch, attr, net, x, method, targets, layer, size, stride, fill, progress, model):
    from minicnn.tools.cam import gradcam_layer
    from minicnn.tools.occlusion import fill_values

    model = torch_mirror(net) if model is None else model
    dtype = torch.float64 if np.dtype(net.dtype) == np.float64 else torch.float32
    xt = torch.from_numpy(np.ascontiguousarray(to_numpy(x))).to(dtype)
    module = model[net.index(gradcam_layer(net, layer, tuple(x.shape[1:])))] if method == "grad_cam" else None
    base = fill_values(net, x, fill) if method == "occlusion" else None
    return captum_on_module(torch, attr, model, xt, method, targets, module, base, size, stride, progress)


def captum_on_module(torch, attr, model, xt, method, targets, module=None, base=None, size=8, stride=4,
                     progress=False):  # fmt: skip
    """Captum's map of ``method`` for the torch module ``model`` on the tensor xt (N, C, H, W):
    float64 NumPy in Captum's layout (see captum_map). module: Grad-CAM's layer (a submodule);
    base: occlusion's fill per image and channel (N, C)."""
    target = [int(t) for t in targets]
    if method in ("saliency", "gradient"):
        out = attr.Saliency(model).attribute(xt, target=target, abs=method == "saliency")
    elif method == "gradient_x_input":
        out = attr.InputXGradient(model).attribute(xt, target=target)
    elif method == "deconvnet":
        out = attr.Deconvolution(model).attribute(xt, target=target)
    elif method == "guided":
        out = attr.GuidedBackprop(model).attribute(xt, target=target)
    elif method == "grad_cam":
        out = attr.LayerGradCam(model, module).attribute(xt, target=target, relu_attributions=True)
    elif method == "occlusion":
        c = xt.shape[1]
        baselines = torch.from_numpy(np.asarray(base)).to(xt.dtype)[:, :, None, None].expand_as(xt)
        out = attr.Occlusion(model).attribute(
            xt,
            sliding_window_shapes=(c, size, size),
            strides=(1, stride, stride),
            baselines=baselines,
            target=target,
            show_progress=progress,
        )
    else:
        raise MinicnnError(f"no Captum reference for method {method!r}")
    return out.detach().numpy().astype(np.float64)
