"""Captum as the reference for ``verify --against captum``: the same network in torch.nn, the same
weights, the same input, and Captum's implementation of each method (Kokhlikyan et al. 2020).

``torch_mirror(net)`` builds a torch.nn.Sequential layer by layer from what each minicnn layer says
about itself (its role flags, ``param_shapes()``, ``window()`` and class), copying the weights (OIHW
convolutions and (out, in) linear weights are torch's own layouts; Flatten is (C, H, W) in both).
Needs torch and captum (``errors.TORCH_CPU_INSTALL``, then ``pip install captum``); imported only when
asked for.
"""

from __future__ import annotations

import warnings

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import TORCH_CPU_INSTALL, MinicnnError


def _torch():
    try:
        import captum.attr  # noqa: F401
        import torch
    except ImportError:
        raise MinicnnError(
            f"--against captum needs torch and captum: {TORCH_CPU_INSTALL}, then pip install captum"
        ) from None
    return torch


def _module(layer, nn):
    """The torch.nn module computing what ``layer`` computes at inference."""
    from minicnn import layers as L

    if layer.is_convolution:
        out_c, in_c, kh, kw = layer.param_shapes()["weight"]
        w = layer.window()
        return nn.Conv2d(in_c, out_c, (kh, kw), stride=w.stride, padding=w.padding)
    if layer.is_linear:
        out_f, in_f = layer.param_shapes()["weight"]
        return nn.Linear(in_f, out_f)
    if layer.is_rectifier:
        return nn.ReLU()
    if isinstance(layer, L.MaxPool2D):
        w = layer.window()
        return nn.MaxPool2d(w.kernel, stride=w.stride, padding=w.padding)
    if isinstance(layer, L.AvgPool2D):
        return nn.AvgPool2d(
            layer.kernel_size, layer.stride, layer.padding, count_include_pad=layer.count_include_pad
        )
    if isinstance(layer, L.AdaptiveAvgPool2D):
        return nn.AdaptiveAvgPool2d(layer.output_size)
    if layer.is_global_pool:
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if layer.is_identity_at_inference:
        return nn.Identity()
    if isinstance(layer, L.Flatten):
        return nn.Flatten()
    if isinstance(layer, L.Softmax):
        return nn.Softmax(dim=1)
    raise MinicnnError(f"no torch module for layer {layer.name!r} ({layer.kind})")


def torch_mirror(net):
    """A torch.nn.Sequential in eval mode equal to ``net``, in net's dtype, on the CPU."""
    torch = _torch()
    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(net.dtype)]
    modules = []
    for layer in net.layers:
        m = _module(layer, torch.nn).to(dtype)
        with torch.no_grad():
            for key, value in layer.params.items():
                getattr(m, key).copy_(torch.from_numpy(np.ascontiguousarray(to_numpy(value))))
        modules.append(m)
    model = torch.nn.Sequential(*modules).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def captum_map(net, x, method: str, targets, layer=None, size: int = 8, stride: int = 4, fill="zero"):
    """Captum's map for ``method`` (see minicnn.tools.verify), in Captum's own layout:
    (N, C, H, W) for the gradient family and occlusion, (N, 1, h, w) for Grad-CAM; float64 NumPy.

    x: (N, C, H, W) network input; targets: (N,) ints (resolved by the caller, so that both sides
    explain the same class).
    """
    torch = _torch()
    from captum import attr

    with warnings.catch_warnings():  # "Setting backward hooks on ReLU activations", "did not require grad"
        warnings.simplefilter("ignore", UserWarning)
        return _attribute(torch, attr, net, x, method, targets, layer, size, stride, fill)


def _attribute(torch, attr, net, x, method, targets, layer, size, stride, fill):
    from minicnn.tools.cam import gradcam_layer
    from minicnn.tools.occlusion import fill_values

    model = torch_mirror(net)
    dtype = torch.float64 if np.dtype(net.dtype) == np.float64 else torch.float32
    xt = torch.from_numpy(np.ascontiguousarray(to_numpy(x))).to(dtype)
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
        name = gradcam_layer(net, layer, tuple(x.shape[1:]))
        module = model[net.index(name)]
        out = attr.LayerGradCam(model, module).attribute(xt, target=target, relu_attributions=True)
    elif method == "occlusion":
        c = xt.shape[1]
        base = torch.from_numpy(fill_values(net, x, fill)).to(xt.dtype)[:, :, None, None].expand_as(xt)
        out = attr.Occlusion(model).attribute(
            xt,
            sliding_window_shapes=(c, size, size),
            strides=(1, stride, stride),
            baselines=base,
            target=target,
        )
    else:
        raise MinicnnError(f"no Captum reference for method {method!r}")
    return out.detach().numpy().astype(np.float64)
