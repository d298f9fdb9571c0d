"""Which layer a command works on: --layer checked against the network, and the defaults.

The defaults ask the layers' role flags (``is_rectifier``, ``is_convolution``, ...), never their
kind strings, so a new layer type that plays the same role is picked up without touching this file.
"""

from __future__ import annotations

from minicnn.errors import MinicnnError


def check_layer(net, name: str | None) -> str:
    """Validate a layer name; the error lists the valid ones."""
    valid = list(net.names)
    if name is None:
        raise MinicnnError(f"--layer is required; expected one of: {', '.join(valid)}")
    if name not in valid:
        raise MinicnnError(f"unknown layer {name!r}; expected one of: {', '.join(valid)}")
    return name


def feature_layer(net) -> str:
    """Default layer of the feature tools: the last rectified convolutional feature map (the last
    rectifier whose output is (C, H, W)), else the last convolution."""
    for layer, shape in zip(reversed(net.layers), reversed(net.shapes()), strict=True):
        if layer.is_rectifier and len(shape) == 3:
            return layer.name
    for layer in reversed(net.layers):
        if layer.is_convolution:
            return layer.name
    raise MinicnnError("the network has no convolutional layer")
