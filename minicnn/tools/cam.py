"""Class activation maps: CAM (Zhou et al. 2016) and Grad-CAM (Selvaraju et al. 2017).

CAM (Zhou et al. 2016, sec. 2): in a network ending in conv -> ReLU -> global average pooling ->
dense, the class score is S_c = sum_k w_ck mean_(x,y) f_k(x, y) + b_c, so the map
M_c(x, y) = sum_k w_ck f_k(x, y) shows where the score comes from: mean(M_c) + b_c = S_c.

Grad-CAM (Selvaraju et al. 2017, sec. 3) works for any convolutional layer of any network: the
weight of map k is the spatial mean of the gradient, alpha_k = mean_(x,y) dS_c/dA_k(x, y), and the
map is ReLU(sum_k alpha_k A_k). For a GAP network at the GAP input it is ReLU(M_c) / (h*w).

Both maps are bilinearly upsampled to the input size (pixel centres aligned, as PyTorch's
``interpolate(..., mode="bilinear", align_corners=False)``), or returned at the layer's resolution.
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError
from minicnn.record import INPUT
from minicnn.tools.targets import as_batch, forward_record, one_hot, resolve_targets


def _is_tail(layer) -> bool:
    """Layers allowed after the final dense one in a CAM network: dropout (nothing at inference)
    and a softmax (monotone in each score: the class with the largest score keeps it)."""
    return layer.is_identity_at_inference or layer.is_probability


def _interp_matrix(n_out: int, n_in: int, xp, dtype):
    """(n_out, n_in) linear-interpolation weights with half-pixel centres (align_corners=False)."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, None)  # outputs left of the first input centre copy it
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1 - lam)
    np.add.at(m, (np.arange(n_out), i1), lam)
    return xp.asarray(m.astype(dtype))


def upsample_bilinear(maps, size):
    """Bilinear resize of maps (N, h, w) to (N, H, W) = (N, *size); same dtype, same device.

    Separable: R_H @ map @ R_W.T with the interpolation matrices above, one batched matmul each.
    """
    xp = get_xp(maps)
    rh = _interp_matrix(size[0], maps.shape[1], xp, maps.dtype)
    rw = _interp_matrix(size[1], maps.shape[2], xp, maps.dtype)
    return rh @ maps @ rw.T


def _cam_head(net):
    """(index of the GlobalAvgPool2D layer, the Dense layer after it) or a MinicnnError.

    In a graph the Dense layer must read the pooling and the pooling be the one node before it."""
    layers = net.layers
    end = len(layers)
    while end > 0 and _is_tail(layers[end - 1]):
        end -= 1
    ok = end >= 2 and layers[end - 1].is_linear and layers[end - 2].is_global_pool
    if not ok or net.inputs[layers[end - 1].name] != (layers[end - 2].name,):
        kinds = [layer.kind for layer in layers[-3:]]  # display text
        raise MinicnnError(
            "CAM needs a network ending in GlobalAvgPool2D -> Dense (Zhou et al. 2016); this one ends "
            f"in {' -> '.join(kinds)}: use grad_cam for any network"
        )
    return end - 2, layers[end - 1]


def cam(net, x, target="predicted", upsample: bool = True, record=None):
    """Class activation maps (Zhou et al. 2016, sec. 2) of the target classes.

    Args:
        net: a Sequential ending in ... -> GlobalAvgPool2D -> Dense (then optionally Dropout or
            Softmax). x: images (N, C, H, W) in network-input space, or one (C, H, W) image.
        target: class index, list of N indices, or "predicted".
        upsample: True: (N, H, W) at the input size (bilinear); False: (N, h, w) at the resolution
            of the feature maps entering the global average pooling.
        record: the PassRecord of a forward pass over x already run by the caller (reused).

    Returns:
        net.dtype array M with M[n] = sum_k w_(t_n, k) f_k, not rectified or normalised, so that
        M[n].mean() + b_(t_n) equals the class score at the layer's resolution.
    """
    x = as_batch(net, x)
    gap, dense = _cam_head(net)
    rec = forward_record(net, x, record)
    targets = resolve_targets(target, rec.output())
    (source,) = net.inputs[net.layers[gap].name]  # what the pooling reads (a graph: by name)
    feats = x if source == INPUT else rec.output(source)  # (N, K, h, w)
    xp = get_xp(feats)
    weights = dense.weight[xp.asarray(targets)]  # (N, K)
    maps = xp.einsum("nk,nkhw->nhw", weights, feats)
    return upsample_bilinear(maps, x.shape[2:]) if upsample else maps


def main_path(net) -> list[int]:
    """Indices (in run order) of the nodes every path from the input to the output goes through:
    after node i runs, its output is the only one that later nodes still read. In a chain that is
    every layer; in a ResNet, the stem and each block's output (the ReLU after its sum), not the
    layers inside a residual branch or a shortcut."""
    names = net.names
    last_read = {}  # node name -> the last position that reads it
    for i, name in enumerate(names):
        for source in net.inputs[name]:
            last_read[source] = i
    path = []
    for i, name in enumerate(names):
        live = {n for n in [INPUT, *names[: i + 1]] if last_read.get(n, -1) > i}
        if live <= {name}:
            path.append(i)
    return path


def gradcam_layer(net, layer: str | None, input_shape) -> str:
    """The layer whose output Grad-CAM uses: ``layer`` itself, or the ReLU right after a conv layer.

    Selvaraju et al. use the rectified maps of the last convolutional layer, so a Conv2D name whose
    one reader is a ReLU means that ReLU's output. None: the last Conv2D, ReLU or sum (Add) with a
    (C, h, w) output on the network's main path (``main_path``): in a ResNet the last block's output (the ReLU
    after its sum, torchvision's ``layer4[-1]``), not a convolution inside its residual branch.
    """
    shapes = net.shapes(input_shape)
    spatial = [i for i, s in enumerate(shapes) if len(s) == 3]
    if layer is None:
        path = set(main_path(net))
        kept = [net.layers[i].is_convolution or net.layers[i].is_rectifier or net.layers[i].several_inputs
                for i in range(len(net.layers))]  # fmt: skip
        convs = [i for i in spatial if i in path and kept[i]]
        if not convs:
            raise MinicnnError("grad_cam needs a network with a convolutional layer")
        i = convs[-1]
    else:
        i = net.index(layer)
        if i not in spatial:
            names = ", ".join(net.layers[j].name for j in spatial)
            raise MinicnnError(
                f"grad_cam needs a layer with (C, h, w) feature maps, {layer!r} outputs "
                f"{shapes[i]}; choose one of: {names}"
            )
    name = net.layers[i].name
    readers = [n for n in net.names if name in net.inputs[n]]
    if net.layers[i].is_convolution and len(readers) == 1 and net[readers[0]].is_rectifier:
        return readers[0]
    return name


def grad_cam(net, x, target="predicted", layer: str | None = None, upsample: bool = True, record=None):
    """Grad-CAM maps (Selvaraju et al. 2017, sec. 3, eq. 1-2) of the target classes.

    Args:
        net: any Sequential with convolutional layers. x: images (N, C, H, W) in network-input
            space, or one (C, H, W) image. target: class index, list of N indices, or "predicted".
        layer: a layer with (C, h, w) outputs, e.g. VGG16 "block5_conv3" (a Conv2D followed by a
            ReLU means its rectified output, as in the paper); None: the last conv layer.
        upsample: True: (N, H, W) at the input size (bilinear); False: (N, h, w) at the layer.
        record: the PassRecord of a forward pass over x already run by the caller (reused).

    Returns:
        net.dtype array ReLU(sum_k alpha_k A_k), alpha_k = spatial mean of dS_t/dA_k; one forward
        and one backward pass (stopped at the layer) for the whole batch. Not normalised.
    """
    x = as_batch(net, x)
    name = gradcam_layer(net, layer, x.shape[1:])
    rec = forward_record(net, x, record)
    scores = rec.output()
    targets = resolve_targets(target, scores)
    grad = rec.backward(one_hot(targets, scores), mode="gradient", stop=name)  # dS/dA at the layer
    feats = rec.output(name)
    xp = get_xp(feats)
    alpha = grad.mean(axis=(2, 3))  # (N, K)
    maps = xp.maximum(xp.einsum("nk,nkhw->nhw", alpha, feats), 0)
    return upsample_bilinear(maps, x.shape[2:]) if upsample else maps
