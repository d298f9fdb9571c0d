"""The saliency methods the sanity checks compare, each as one attribution per image.

Adebayo et al. (2018, sec. 2) test the gradient (Simonyan et al. 2013), gradient x input
(Shrikumar et al. 2016), SmoothGrad (Smilkov et al. 2017), guided backpropagation (Springenberg et
al. 2015), Integrated Gradients (Sundararajan et al. 2017), Grad-CAM and guided Grad-CAM (Selvaraju
et al. 2017). Every method of minicnn's registry (tools/methods.py) that explains a class can be
checked: the DeconvNet (Zeiler & Fergus 2013, the independent reverse network of
tools/deconvnet.py), CAM (Zhou et al. 2016) where the network ends in global average pooling and
one dense layer, excitation backprop, LRP, DeepLIFT and occlusion. The registry's names are the
names here (its aliases and "-" / "_" spellings are accepted); "saliency" (max_c |gradient|, the
gradient here being signed) and "reconstruct" (a unit's projection, no class) are not checked.

Every method returns a signed attribution (N, C, H, W) (Grad-CAM, CAM and occlusion one channel:
their map of the input's pixels); ``all_maps`` sums it over colour channels. The comparison
protocols reduce channels each their own way (sanity_protocols.py); the pointing game reads the
peak of |map| for the backpropagation methods and of the map itself for the class activation maps
(their positive evidence).
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.tools import methods as registry
from minicnn.tools.cam import _cam_head, cam, grad_cam
from minicnn.tools.deconvnet import deconvnet_backward
from minicnn.tools.saliency import saliency
from minicnn.tools.targets import forward_record, one_hot

NOT_CHECKED = ("saliency", "reconstruct")  # see the module docstring
ON_REQUEST = ("occlusion",)  # one pass per occluder position: run when named, not with "all"
# name -> (title, paper); the order in which tables and figures list them (the registry's)
METHODS = {
    name: (m.title, m.paper) for name, m in registry.METHODS.items() if m.target and name not in NOT_CHECKED
}
CLASS_MAPS = ("grad_cam", "cam")  # their peak is the most positive value, not the largest |value|
SMOOTHGRAD_SAMPLES = 16  # fewer than Smilkov et al.'s 50: the checks run every method many times
SMOOTHGRAD_NOISE = 0.15


def has_cam(net) -> bool:
    """Whether the network ends in global average pooling and one dense layer (CAM's condition)."""
    try:
        _cam_head(net)
    except MinicnnError:
        return False
    return True


def available_methods(net) -> list[str]:
    """Every method this network allows, in METHODS order, but those run only on request (CAM
    only with a GAP head)."""
    out = []
    for m in METHODS:
        if m in ON_REQUEST:
            continue
        try:
            registry.get(m).check(net)
        except MinicnnError:
            continue
        out.append(m)
    return out


def method_names(methods) -> list[str]:
    """The canonical names of ``methods`` (a list or one comma-separated string; registry aliases
    and spellings accepted), checked without a network: an unknown name is one MinicnnError that
    lists the valid choices."""
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    methods = list(methods)
    if not methods:
        raise MinicnnError(f"expected at least one method; choose from: {', '.join(METHODS)}")
    out = []
    for m in methods:
        try:
            name = registry.canonical(m)
        except MinicnnError:
            name = None
        if name not in METHODS:
            raise MinicnnError(f"unknown method {m!r}; expected one of: {', '.join(METHODS)}") from None
        out.append(name)
    return out


def check_methods(net, methods) -> list[str]:
    """``method_names(methods)``, and each allowed by ``net``: CAM on a network without a GAP head
    raises one MinicnnError that says what CAM needs."""
    names = method_names(methods)
    for m in names:
        registry.get(m).check(net)  # its error says what the method needs (CAM: suggests grad_cam)
    return names


def method_maps(net, x, targets, method: str, seed: int = 0, record=None) -> np.ndarray:
    """One method's maps: x (N, C, H, W) batch of net.dtype, targets (N,) ints -> (N, H, W) float64
    on the host, signed (see the module docstring). seed: SmoothGrad's noise."""
    return all_maps(net, x, targets, [method], seed, record)[method]


def all_maps(net, x, targets, methods, seed: int = 0, record=None) -> dict:
    """Several methods on one forward pass: {method: (N, H, W) float64}, each attribution summed over
    colour channels. record: a PassRecord of a full forward pass over x (reused)."""
    return {m: a.sum(axis=1) for m, a in all_attributions(net, x, targets, methods, seed, record).items()}


def all_attributions(net, x, targets, methods, seed: int = 0, record=None) -> dict:
    """Several methods on one forward pass, channels kept: {method: (N, C, H, W) float64} on the
    host (C = 1 for Grad-CAM and CAM, whose map is one class map upsampled to the input). The
    protocols of sanity_protocols.py reduce the channels each its own way (Adebayo et al. take
    sum_c |a_c|, so the sum must not be taken first)."""
    rec = forward_record(net, x, record)
    dy = one_hot(targets, rec.output())
    out = {}
    for m in methods:
        if m == "gradient":
            a = rec.backward(dy, mode="gradient")
        elif m == "gradient_x_input":
            a = rec.backward(dy, mode="gradient") * x
        elif m == "guided":
            a = rec.backward(dy, mode="guided")
        elif m == "deconvnet":
            a = deconvnet_backward(net, rec, dy)
        elif m == "smoothgrad":
            a = saliency(
                net,
                x,
                targets,
                signed=True,
                samples=SMOOTHGRAD_SAMPLES,
                noise=SMOOTHGRAD_NOISE,
                seed=seed,
                progress=False,  # one step of the sanity checks' own progress bar
            )
        elif m == "grad_cam":
            a = grad_cam(net, x, targets, record=rec)[:, None]
        elif m == "cam":
            a = cam(net, x, targets, record=rec)[:, None]
        elif m in METHODS:
            method = registry.get(m)
            a = method(net, x, targets, record=rec)
            a = a[:, None] if method.shape == "NHW" else a
        else:
            raise MinicnnError(f"unknown method {m!r}; expected one of: {', '.join(METHODS)}")
        out[m] = to_numpy(a).astype(np.float64)
    return out


def peak_map(method: str, maps) -> np.ndarray:
    """The map whose maximum a method points at: |maps| for backpropagation methods, the map
    itself for Grad-CAM and CAM. maps: (N, H, W) -> same shape."""
    return np.asarray(maps) if method in CLASS_MAPS else np.abs(maps)
