"""Guided Grad-CAM (Selvaraju et al. 2017, sec. 3.1): guided backpropagation times Grad-CAM.

Guided backpropagation (Springenberg et al. 2015) is sharp but hardly class-discriminative; Grad-CAM
is class-discriminative but coarse (the resolution of its layer). Selvaraju et al. fuse them by
point-wise multiplication, "L_Grad-CAM is first upsampled to the input image resolution using
bilinear interpolation":

    GuidedGradCAM[n, c, y, x] = guided[n, c, y, x] * up(ReLU(sum_k alpha_k A_k))[n, y, x]

``upsample="bilinear"`` is the paper's (pixel centres aligned: PyTorch's ``interpolate(...,
mode="bilinear", align_corners=False)``, tools/cam.py); ``"nearest"`` is Captum's default
(``GuidedGradCam.attribute(interpolate_mode="nearest")``: output pixel i reads input pixel
floor(i * h / H), PyTorch's ``interpolate(..., mode="nearest")``), offered to match Captum.
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError
from minicnn.tools.cam import grad_cam, upsample_bilinear
from minicnn.tools.targets import as_batch, forward_record, one_hot, resolve_targets

#: how the Grad-CAM map reaches the input's size
UPSAMPLING = ("bilinear", "nearest")


def upsample_nearest(maps, size):
    """Nearest-neighbour resize of maps (N, h, w) to (N, H, W) = (N, *size): output pixel (i, j)
    reads input pixel (floor(i h / H), floor(j w / W)), PyTorch's "nearest" (not "nearest-exact")."""
    xp = get_xp(maps)
    h, w = maps.shape[1:]
    rows = np.minimum((np.arange(size[0]) * h) // size[0], h - 1)  # integer floor: no rounding of h / H
    cols = np.minimum((np.arange(size[1]) * w) // size[1], w - 1)
    return maps[:, xp.asarray(rows)][:, :, xp.asarray(cols)]


def guided_grad_cam(net, x, target="predicted", layer: str | None = None, upsample: str = "bilinear",
                    record=None):  # fmt: skip
    """Guided Grad-CAM maps (Selvaraju et al. 2017, sec. 3.1) of the target classes.

    Args:
        net: a Sequential or Graph with convolutional layers, ending in class scores.
        x: images (N, C, H, W) in network-input space, or one (C, H, W) image.
        target: class index, list of N indices, or "predicted".
        layer: Grad-CAM's layer (as ``grad_cam``: a Conv2D followed by a ReLU means its rectified
            output); None: the last convolutional layer.
        upsample: "bilinear" (the paper) or "nearest" (Captum's default); see the module docstring.
        record: the PassRecord of a full forward pass over x already run by the caller (reused).

    Returns:
        (N, C, H, W) array of net.dtype: the guided-backpropagation signal times the upsampled
        Grad-CAM map. One forward pass and two backward passes (guided, and the gradient down to
        the layer).
    """
    if upsample not in UPSAMPLING:
        raise MinicnnError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {upsample!r}")
    x = as_batch(net, x)
    rec = forward_record(net, x, record)
    scores = rec.output()
    targets = resolve_targets(target, scores)
    guided = rec.backward(one_hot(targets, scores), mode="guided")
    cam = grad_cam(net, x, targets, layer=layer, upsample=False, record=rec)  # (N, h, w)
    resize = upsample_bilinear if upsample == "bilinear" else upsample_nearest
    return guided * resize(cam, x.shape[2:])[:, None]
