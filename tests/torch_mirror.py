"""The same network in plain torch.nn, with the same weights: the external oracle for engine and tools.

Written by hand (no torchvision on these machines). ``to_torch(net)`` mirrors a minicnn Sequential
layer by layer; Flatten uses NCHW order in both frameworks, so dense weights copy over unchanged.
"""

from __future__ import annotations

import numpy as np
from support import oracle

import minicnn as mc


def to_torch(net, dtype=None):
    """A torch.nn.Sequential equal to ``net`` (inference mode), in ``dtype`` (default: net's dtype)."""
    torch = oracle("torch")
    dtype = (
        dtype
        or {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(net.dtype)]
    )
    modules = []
    for layer in net.layers:
        m = mirror(layer, torch.nn).to(dtype)  # before copying, so float64 weights keep every bit
        with torch.no_grad():
            for key, value in layer.params.items():
                getattr(m, key).copy_(torch.from_numpy(np.asarray(value)))
        modules.append(m)
    model = torch.nn.Sequential(*modules).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def mirror(layer, nn):
    """The torch.nn module computing what ``layer`` computes at inference.

    Geometry comes from the layer itself (``param_shapes``: OIHW convolution weights, (out, in) dense
    weights; ``window``: kernel, stride, padding), the role from its flags or its class, never from
    its ``kind`` string.
    """
    if layer.is_convolution:
        out_channels, in_channels, kh, kw = layer.param_shapes()["weight"]
        window = layer.window()
        return nn.Conv2d(in_channels, out_channels, (kh, kw), stride=window.stride, padding=window.padding)
    if layer.is_linear:
        out_features, in_features = layer.param_shapes()["weight"]
        return nn.Linear(in_features, out_features)
    if layer.is_rectifier:
        return nn.ReLU()
    if isinstance(layer, mc.MaxPool2D):
        window = layer.window()
        return nn.MaxPool2d(window.kernel, stride=window.stride, padding=window.padding)
    if isinstance(layer, mc.GlobalAvgPool2D):
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if isinstance(layer, mc.Dropout):  # the mirror runs in eval mode, where this is the identity
        return nn.Dropout(layer.p)
    if isinstance(layer, mc.Flatten):  # (C, H, W) order in both frameworks
        return nn.Flatten()
    if isinstance(layer, mc.Softmax):
        return nn.Softmax(dim=1)
    raise ValueError(f"no torch mirror for {layer!r}")  # pragma: no cover


def torch_index(net, name: str) -> int:
    """Index of minicnn layer ``name`` in the mirrored torch.nn.Sequential (the same position)."""
    return net.index(name)
