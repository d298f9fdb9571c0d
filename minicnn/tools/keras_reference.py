"""Keras as the reference for ``verify --against keras``: the same network rebuilt from Keras layers
(channels-last, as Keras users and tf-keras-vis have it), the same weights, gradients from the
backend's autograd.

Keras 3 with the torch backend (``KERAS_BACKEND=torch``, set here when Keras is not loaded yet);
the gradient family (gradient, saliency, gradient x input) and Grad-CAM, which tf-keras-vis computes
the same way (``Saliency``, ``Gradcam``). Keras has no DeconvNet or guided-backpropagation rule
(tf-keras-vis changes the model's activations for those), so those methods are refused here; use
``--against captum`` or a map file.

Layer by layer (minicnn NCHW -> Keras NHWC), each layer's own Keras layers (``Layer.keras_layers``):
convolution weights (O, C, kh, kw) -> (kh, kw, C, O) with explicit ZeroPadding2D; dense (out, in) ->
(in, out); minicnn flattens (C, H, W), Keras (H, W, C), so a Permute((3, 1, 2)) goes before Keras's
Flatten; average pools with padding count the padding (ZeroPadding2D then AveragePooling2D), as
torch's default does.
"""

from __future__ import annotations

import os

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import TORCH_CPU_INSTALL, MinicnnError
from minicnn.record import INPUT

METHODS = ("gradient", "saliency", "gradient_x_input", "grad_cam")


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
        import torch
    except ImportError:
        raise MinicnnError(
            f"--against keras needs keras 3 and torch: {TORCH_CPU_INSTALL}, then pip install keras"
        ) from None
    if keras.backend.backend() != "torch":
        raise MinicnnError(
            f"--against keras needs KERAS_BACKEND=torch (Keras runs on {keras.backend.backend()})"
        )
    return keras, torch


def keras_mirror(net, input_shape, upto: str | None = None):
    """(keras.Model with outputs [scores] or [scores, output of layer ``upto``]) equal to net, for
    channels-last input of (C, H, W) = input_shape. A graph's nodes become Keras's functional graph:
    each node's layers are applied to the outputs of the nodes it reads (Add to the list of them)."""
    keras, _ = _keras()
    c, h, w = input_shape
    inp = keras.Input((h, w, c))
    tapped, weights = None, {}
    outputs, shapes = {INPUT: inp}, {INPUT: tuple(input_shape)}  # a graph's nodes read these by name
    for layer in net.layers:
        given = [outputs[name] for name in net.inputs[layer.name]]
        shape = [shapes[name] for name in net.inputs[layer.name]]
        y, shape = (given, shape) if layer.several_inputs else (given[0], shape[0])
        made, params = layer.keras_layers(keras, shape)
        for k in made:
            y = k(y)
        weights.update(params)
        if layer.name == upto:
            tapped = y
        outputs[layer.name], shapes[layer.name] = y, layer.output_shape(shape)
    for k, values in weights.items():
        k.set_weights([np.asarray(v, dtype=np.float32) for v in values])
    return keras.Model(inp, [y] if tapped is None else [y, tapped])


def keras_map(net, x, method: str, targets, layer=None):
    """The Keras map for ``method``, in minicnn's layout (N, C, H, W); Grad-CAM (N, h, w). float64.

    x: (N, C, H, W) network input; targets: (N,) ints."""
    if method not in METHODS:
        raise MinicnnError(
            f"--against keras computes {', '.join(METHODS)}; Keras has no {method} rule "
            "(use --against captum)"
        )
    keras, torch = _keras()
    from minicnn.tools.cam import gradcam_layer

    x = np.asarray(to_numpy(x), dtype=np.float32)
    name = gradcam_layer(net, layer, x.shape[1:]) if method == "grad_cam" else None
    model = keras_mirror(net, x.shape[1:], upto=name)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 3, 1))).requires_grad_(True)
    outs = model(xt)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]  # one output comes back bare
    scores = outs[0]
    picked = scores[torch.arange(len(x)), torch.as_tensor(np.asarray(targets, dtype=np.int64))].sum()
    if method == "grad_cam":
        feats = outs[1]
        (g,) = torch.autograd.grad(picked, feats)
        alpha = g.mean(dim=(1, 2))  # (N, K): the mean over positions of dS/dA (channels last)
        cam = torch.relu(torch.einsum("nk,nhwk->nhw", alpha, feats))
        return cam.detach().numpy().astype(np.float64)
    (g,) = torch.autograd.grad(picked, xt)
    g = g.detach().numpy().transpose(0, 3, 1, 2).astype(np.float64)
    if method == "gradient_x_input":
        g = g * x
    return np.abs(g) if method == "saliency" else g
