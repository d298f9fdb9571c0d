"""Guided Grad-CAM (Selvaraju et al. 2017) against Captum's GuidedGradCam in float64.

Captum's convention: ``interpolate_mode="nearest"`` by default (F.interpolate), where the paper
upsamples bilinearly. With the same mode both agree to 1e-12; with each one's default they differ by
exactly guided x (bilinear - nearest) of the Grad-CAM map, both upsamplings computed by torch here.
"""

from __future__ import annotations

import numpy as np
import pytest
from method_nets import small_vgg
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.tools import methods
from minicnn.tools.cam import gradcam_layer


def odd_net():
    """A stride-2 convolution on 15x15: Grad-CAM's 7x7 map goes to 15x15 (no integer factor)."""
    net = mc.Sequential([mc.Conv2D(3, 6, 3, stride=2), mc.ReLU(), mc.Conv2D(6, 8, 3, padding=1), mc.ReLU(),
                         mc.Flatten(), mc.Dense(8 * 49, 4)], seed=2, dtype=np.float64)  # fmt: skip
    rng = np.random.default_rng(9)
    for layer in net.layers:
        if layer.has_params:
            layer.bias = 0.1 * rng.standard_normal(layer.bias.shape)
    return net


CASES = {
    "vgg16x16": (lambda: small_vgg(seed=4).astype(np.float64), (3, 3, 16, 16), None),
    "vgg-block1": (lambda: small_vgg(seed=4).astype(np.float64), (3, 3, 16, 16), "conv2d_1"),
    "stride2-15x15": (odd_net, (3, 3, 15, 15), None),
}


def captum_guided_gradcam(net, x, target, layer, mode):
    torch = oracle("torch")
    attr = oracle("captum.attr")
    from minicnn.tools.captum_reference import torch_mirror

    model = torch_mirror(net)
    module = model[net.index(gradcam_layer(net, layer, x.shape[1:]))]
    ggc = attr.GuidedGradCam(model, module)
    out = ggc.attribute(torch.tensor(x, requires_grad=True), target=list(target), interpolate_mode=mode)
    return out.detach().numpy()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_equals_captum_with_the_same_upsampling(case, mode):
    make, shape, layer = CASES[case]
    net = make()
    x = np.random.default_rng(0).standard_normal(shape)
    target = [0, 3, 1]
    ours = mc.guided_grad_cam(net, x, target, layer=layer, upsample=mode)
    assert ours.shape == shape and ours.dtype == np.float64
    assert_close(ours, captum_guided_gradcam(net, x, target, layer, mode), rtol=1e-12, what=f"{case} {mode}")


@pytest.mark.parametrize("case", CASES)
def test_the_defaults_differ_by_exactly_the_upsampling(case):
    """Ours (bilinear, the paper) - Captum's default (nearest) = guided x (bilinear - nearest)(Grad-CAM),
    the two upsamplings by torch's F.interpolate; and that difference is not zero where the layer is
    coarser than the input."""
    torch = oracle("torch")
    make, shape, layer = CASES[case]
    net = make()
    x = np.random.default_rng(1).standard_normal(shape)
    target = [2, 0, 1]
    ours = mc.guided_grad_cam(net, x, target, layer=layer)
    captum = captum_guided_gradcam(net, x, target, layer, "nearest")
    cam = torch.tensor(mc.grad_cam(net, x, target, layer=layer, upsample=False)[:, None])
    size = shape[2:]
    up = {m: torch.nn.functional.interpolate(cam, size, mode=m).numpy() for m in ("bilinear", "nearest")}
    guided = methods.get("guided")(net, x, target)
    expected = guided * (up["bilinear"] - up["nearest"])
    assert_close(ours - captum, expected, rtol=1e-12, scale=np.abs(ours).max(), what="upsampling convention")
    if tuple(cam.shape[2:]) != tuple(size):  # conv2d_1 works at the input's size: nothing to upsample
        assert np.abs(ours - captum).max() > 1e-3 * np.abs(ours).max()


def test_class_sensitive():
    """Two classes give two different maps (Grad-CAM's factor), unlike guided backprop's."""
    net = small_vgg(seed=4).astype(np.float64)
    x = np.random.default_rng(2).standard_normal((2, 3, 16, 16))
    a = mc.guided_grad_cam(net, x, 0)
    b = mc.guided_grad_cam(net, x, 1)
    assert np.abs(a - b).max() > 0.1 * np.abs(a).max()


def test_bad_upsampling_is_one_line():
    net = small_vgg(seed=4)
    with pytest.raises(MinicnnError, match="upsample must be one of bilinear, nearest, got 'cubic'"):
        mc.guided_grad_cam(net, np.zeros((1, 3, 16, 16), np.float32), 0, upsample="cubic")
