"""The registry of attribution methods (minicnn/tools/methods.py): every name in use resolves, each
entry computes what its name means (against Captum in float64), and its claims (map shape, sign,
completeness) are measured on real maps."""

from __future__ import annotations

import numpy as np
import pytest
from method_nets import small_vgg
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.paths import DEFAULT_MODEL, GAP_MODEL, HELDOUT
from minicnn.tools import methods

# the names the commands and tools accepted before the registry (cmd_attribute's --method included)
OLD_NAMES = {
    "attribute": ("saliency", "cam", "gradcam", "occlusion", "reconstruct"),
    "verify": ("saliency", "gradient", "gradient_x_input", "deconvnet", "guided", "grad_cam", "occlusion"),
    "sanity": ("gradient", "gradient_x_input", "smoothgrad", "guided", "deconvnet", "grad_cam", "cam"),
    "keras": ("gradient", "saliency", "gradient_x_input", "grad_cam"),
}
# Captum's class for a registry name (float64, its defaults otherwise)
CAPTUM = {"gradient": "Saliency", "gradient_x_input": "InputXGradient", "guided": "GuidedBackprop",
          "deconvnet": "Deconvolution"}  # fmt: skip


@pytest.fixture(scope="module")
def digits():
    """(the shipped VGG, the shipped GAP net, 6 held-out digits (6, 1, 28, 28) float32 in [0, 1])."""
    with np.load(HELDOUT) as data:
        x = mc.preprocess(data["images"][:6, :, :, None], "unit")
    return mc.load(DEFAULT_MODEL), mc.load(GAP_MODEL), x


@pytest.mark.parametrize("where", OLD_NAMES)
def test_every_name_in_use_resolves(where):
    for name in OLD_NAMES[where]:
        assert methods.canonical(name) in methods.NAMES
    assert methods.canonical("gradcam") == methods.canonical("grad-cam") == "grad_cam"
    assert methods.canonical("integrated_gradients") == methods.canonical("ig") == "integrated-gradients"


def test_names_are_unique_and_aliases_point_home():
    spellings = [s for name in methods.NAMES for s in {name, name.replace("-", "_"), name.replace("_", "-")}]
    assert len(spellings) == len(set(spellings))  # no two methods share a spelling
    assert not set(methods.ALIASES) & set(methods.NAMES)
    assert set(methods.choices()) == set(methods.NAMES) | set(methods.ALIASES)


def test_unknown_names_and_options_are_one_line(digits):
    net, _, x = digits
    with pytest.raises(MinicnnError) as err:
        methods.get("gradcamm")
    assert str(err.value).startswith("unknown method 'gradcamm'; expected one of: saliency, gradient")
    with pytest.raises(MinicnnError, match=r"method integrated-gradients has no option 'step' \(its options: "
                       r"baseline, steps, method, batch_size\)"):  # fmt: skip
        methods.compute("ig", net, x, step=3)
    with pytest.raises(MinicnnError, match="CAM needs a network ending in GlobalAvgPool2D -> Dense"):
        methods.get("cam").check(net)
    assert "cam" not in methods.available(net)
    assert "cam" in methods.available(digits[1])


@pytest.mark.parametrize("name", CAPTUM)
def test_names_compute_what_captum_computes(name):
    """float64: the registry's map for the name equals Captum's method of that name (1e-12)."""
    torch = oracle("torch")
    attr = oracle("captum.attr")
    from minicnn.tools.captum_reference import torch_mirror

    net = small_vgg(seed=6).astype(np.float64)
    x = np.random.default_rng(3).standard_normal((3, 3, 16, 16))
    method = getattr(attr, CAPTUM[name])(torch_mirror(net))
    kwargs = {"abs": False} if name == "gradient" else {}
    ref = method.attribute(torch.tensor(x, requires_grad=True), target=[1, 0, 4], **kwargs).detach().numpy()
    assert_close(methods.compute(name, net, x, [1, 0, 4]), ref, rtol=1e-12, what=name)


def test_aliases_give_the_same_map(digits):
    net, _, x = digits
    assert np.array_equal(methods.compute("gradcam", net, x), mc.grad_cam(net, x))
    assert np.array_equal(methods.compute("guided_gradcam", net, x), mc.guided_grad_cam(net, x))


def every_map(net, x):
    """{name: map} of every method that the network allows, on the shipped digits."""
    maps = {}
    for name in methods.available(net):
        options = {"layer": "block2_conv1_relu"} if name == "reconstruct" else {}
        if name in ("smoothgrad", "integrated-gradients"):
            options = {"samples": 8} if name == "smoothgrad" else {"steps": 16}
        maps[name] = np.asarray(methods.compute(name, net, x, **options), np.float64)
    return maps


def test_shapes_and_signs_are_as_declared(digits):
    """Every entry's map has its declared shape; an unsigned map is never negative on the digits
    (inputs >= 0), and a signed one takes both signs on these six digits (measured)."""
    vgg, gap, x = digits
    for net in (vgg, gap):
        for name, a in every_map(net, x).items():
            m = methods.get(name)
            expected = x.shape if m.shape == "NCHW" else (len(x), *x.shape[2:])
            assert a.shape == expected, name
            if m.signed:
                assert a.min() < 0 < a.max(), name
            else:
                assert a.min() >= 0 and a.max() > 0, name


def test_completeness_claims_hold_where_they_are_exact(digits):
    """The claims measured: IG's sum approaches F(x) - F(0) with steps (here within 2% of the
    difference at 256 steps), excitation's is 1 and the
    contrastive one's 0 without biases (and less than 1 with the shipped ones)."""
    net, _, x = digits
    scores = net.forward(x).astype(np.float64)
    diff = scores.max(axis=1) - net.forward(np.zeros_like(x)).astype(np.float64)[range(6), scores.argmax(1)]
    ig = methods.compute("integrated-gradients", net, x, steps=256)
    assert np.abs(mc.completeness_gap(net, x, ig)).max() < 0.02 * np.abs(diff).max()
    bias_free = mc.load(DEFAULT_MODEL)  # a unit switched on by its bias alone has Z_j = 0: P is lost
    for layer in bias_free.layers:
        if layer.has_params:
            layer.bias = np.zeros_like(layer.bias)
    for name, total in (("excitation", 1.0), ("contrastive-excitation", 0.0)):
        sums = methods.compute(name, bias_free, x).reshape(6, -1).sum(axis=1)
        np.testing.assert_allclose(sums, total, atol=1e-5, err_msg=name)
    lossy = methods.compute("excitation", net, x).reshape(6, -1).sum(axis=1)
    assert np.all(lossy < 1 - 1e-3)  # with the shipped biases the claim fails, measurably
    assert methods.get("integrated-gradients").completeness == "F(x) - F(baseline)"
    assert not methods.get("saliency").complete
