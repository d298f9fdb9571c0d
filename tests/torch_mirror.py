"""The same network in plain torch.nn, with the same weights: the external oracle for engine and tools.

Written by hand (no torchvision on these machines). ``to_torch(net)`` mirrors a minicnn Sequential
layer by layer; Flatten uses NCHW order in both frameworks, so dense weights copy over unchanged.
"""

from __future__ import annotations

import numpy as np
from support import oracle


def to_torch(net, dtype=None):
    """A torch.nn.Sequential equal to ``net`` (inference mode), in ``dtype`` (default: net's dtype)."""
    torch = oracle("torch")
    nn = torch.nn
    dtype = (
        dtype
        or {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(net.dtype)]
    )
    modules = []
    for layer in net.layers:
        kind = layer.kind
        if kind == "Conv2D":
            m = nn.Conv2d(
                layer.in_channels,
                layer.out_channels,
                layer.kernel_size,
                stride=layer.stride,
                padding=layer.padding,
            )
        elif kind == "Dense":
            m = nn.Linear(layer.in_features, layer.out_features)
        elif kind == "ReLU":
            m = nn.ReLU()
        elif kind == "MaxPool2D":
            m = nn.MaxPool2d(layer.kernel_size, stride=layer.stride)
        elif kind == "Flatten":
            m = nn.Flatten()
        elif kind == "Dropout":
            m = nn.Dropout(layer.p)
        elif kind == "GlobalAvgPool2D":
            m = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        elif kind == "Softmax":
            m = nn.Softmax(dim=1)
        else:  # pragma: no cover
            raise ValueError(kind)
        m = m.to(dtype)  # before copying, so float64 weights keep every bit
        if layer.has_params:
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(np.asarray(layer.weight)))
                m.bias.copy_(torch.from_numpy(np.asarray(layer.bias)))
        modules.append(m)
    model = nn.Sequential(*modules).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def torch_index(net, name: str) -> int:
    """Index of minicnn layer ``name`` in the mirrored torch.nn.Sequential (the same position)."""
    return net.index(name)
