"""verify's diagnosis: each pitfall built as a model and a map, made where possible by the framework
that has it (Captum on the torch model itself, torch autograd), is named by its cause; correct maps
are given none.

The torch model is a torchvision-layout VGG (features / avgpool / classifier) saved as .pth and
read by minicnn in float64; Captum runs on the torch model in float64, so a correct map agrees to
~1e-15 and the tolerance 1e-6 tells a named cause from noise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch_models as tm
from support import oracle
from verify_cases import near_tie_net

import minicnn as mc
from minicnn.tools.diagnosis import CAUSES
from minicnn.tools.verify import verify

SIZE = 32
TARGETS = [3, 7]
TOL = 1e-6


@pytest.fixture(scope="module")
def vgg(tmp_path_factory):
    """(minicnn net float64, torch model float64, x (2, 3, 32, 32) float64 torch-preprocessed)."""
    torch = oracle("torch")
    model = tm.torchvision_vgg(bn=False).to(torch.float64)
    path = tm.save(model.float(), tmp_path_factory.mktemp("diag") / "vgg.pth", "zip")
    model = model.to(torch.float64)
    net = mc.load(path).astype(np.float64)
    x = mc.preprocess(tm.images(2, SIZE, seed=11), "torch", dtype=np.float64)
    return net, model, x


def captum(model, x, method, target=TARGETS, **kw):
    torch = oracle("torch")
    attr = oracle("captum.attr")
    cls = {"saliency": attr.Saliency, "deconvnet": attr.Deconvolution, "guided": attr.GuidedBackprop,
           "gradient_x_input": attr.InputXGradient}[method]  # fmt: skip
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return (
            cls(model)
            .attribute(torch.from_numpy(np.ascontiguousarray(x)), target=target, **kw)
            .detach()
            .numpy()
        )


def causes(result):
    return [e.cause for e in result.diagnosis]


def first(result, cause):
    return next(e for e in result.diagnosis if e.cause == cause)


def test_causes_are_the_documented_vocabulary():
    from minicnn.tools import diagnosis

    for cause in CAUSES:
        assert f"    {cause} " in diagnosis.__doc__
    assert len(set(CAUSES)) == 14


@pytest.mark.parametrize("method", ["gradient", "saliency", "gradient_x_input", "deconvnet", "guided"])
def test_correct_maps_get_no_diagnosis(vgg, method):
    net, model, x = vgg
    kw = {"abs": False} if method == "gradient" else {}
    ref = captum(model, x, "saliency" if method == "gradient" else method, **kw)
    result = verify(net, x, ref, method, TARGETS, tol=TOL)
    assert result.agree and result.diagnosis == [] and result.closest is None, result.lines()


def test_sign_loss_gradient(vgg):
    """The gradient of a loss -S_t (minimised), by torch autograd."""
    torch = oracle("torch")
    net, model, x = vgg
    xt = torch.from_numpy(x).requires_grad_(True)
    (-model(xt)[[0, 1], TARGETS].sum()).backward()
    result = verify(net, x, xt.grad.numpy(), "gradient", TARGETS, tol=TOL)
    assert not result.agree and causes(result)[0] == "sign" and result.diagnosis[0].residual < 1e-12


def test_abs_captum_saliency_given_for_gradient(vgg):
    net, model, x = vgg
    result = verify(net, x, captum(model, x, "saliency"), "gradient", TARGETS, tol=TOL)
    assert not result.agree and causes(result)[0] == "abs", result.lines()
    assert "explained: abs:" in "\n".join(result.lines())


def test_signed_map_given_for_saliency_is_reported(vgg):
    """Captum Saliency(abs=False) given for --method saliency: not accepted, its |.| agrees."""
    net, model, x = vgg
    result = verify(net, x, captum(model, x, "saliency", abs=False), "saliency", TARGETS, tol=TOL)
    assert result.signed and not result.agree
    assert causes(result)[0] == "abs" and "signed map given for saliency" in result.diagnosis[0].detail
    assert result.diagnosis[0].residual < 1e-12


def test_scale_normalised_per_image(vgg):
    """tf-keras-vis' normalize / pytorch-grad-cam's scale_cam_image: (m - min) / (max - min) per image."""
    net, model, x = vgg
    g = captum(model, x, "guided")
    lo, hi = g.min(axis=(1, 2, 3), keepdims=True), g.max(axis=(1, 2, 3), keepdims=True)
    result = verify(net, x, (g - lo) / (hi - lo), "guided", TARGETS, tol=TOL)
    assert causes(result)[0] == "scale" and "normalised per image" in result.diagnosis[0].detail


def test_channel_order_bgr_input(vgg):
    """Captum given the image with its channels reversed (an OpenCV BGR image)."""
    net, model, x = vgg
    ref = captum(model, x[:, ::-1], "saliency", abs=False)
    result = verify(net, x, ref, "gradient", TARGETS, tol=TOL)
    assert "channel-order" in causes(result)[:2], result.lines()
    assert "input" in first(result, "channel-order").detail


def test_layout_reshape_instead_of_transpose(vgg):
    """An NCHW Captum map reshaped (not transposed) to NHWC for a Keras-minded tool."""
    net, model, x = vgg
    ref = captum(model, x, "guided")
    result = verify(net, x, ref.reshape(2, SIZE, SIZE, 3), "guided", TARGETS, tol=TOL)
    assert result.layout == "NHWC" and causes(result)[0] == "layout"
    assert "reshaped to NHWC" in result.diagnosis[0].detail


def test_preprocessing_caffe_instead_of_torch(vgg):
    """The same pixels preprocessed with Keras' caffe convention for a torchvision model."""
    net, model, x = vgg
    x_caffe = mc.preprocess(tm.images(2, SIZE, seed=11), "caffe", dtype=np.float64)
    result = verify(net, x, captum(model, x_caffe, "guided"), "guided", TARGETS, tol=TOL)
    assert causes(result)[0] == "preprocessing" and "'caffe'" in result.diagnosis[0].detail


def test_target_another_class(vgg):
    net, model, x = vgg
    result = verify(net, x, captum(model, x, "deconvnet", target=[0, 0]), "deconvnet", TARGETS, tol=TOL)
    assert causes(result)[0] == "target" and "class 0" in result.diagnosis[0].detail


def test_softmax_guided_on_probabilities(vgg):
    """Captum GuidedBackprop on the model with a Softmax appended (Keras applications' default)."""
    torch = oracle("torch")
    net, model, x = vgg
    probs = torch.nn.Sequential(model, torch.nn.Softmax(dim=1))
    result = verify(net, x, captum(probs, x, "guided"), "guided", TARGETS, tol=TOL)
    assert causes(result)[0] == "softmax" and "probability p_t" in result.diagnosis[0].detail


def test_method_input_x_gradient_given_for_gradient(vgg):
    net, model, x = vgg
    result = verify(net, x, captum(model, x, "gradient_x_input"), "gradient", TARGETS, tol=TOL)
    assert causes(result)[0] == "method" and "gradient_x_input" in result.diagnosis[0].detail


def test_batch_every_image_gets_the_first_map(vgg):
    net, model, x = vgg
    ref = captum(model, x[[0, 0]], "guided", target=[TARGETS[0]] * 2)
    result = verify(net, x, ref, "guided", TARGETS, tol=TOL)
    assert "batch" in causes(result) and "image 1 has image 0's" in first(result, "batch").detail


class FunctionalReLU:
    """A module whose forward calls F.relu: no nn.ReLU for Captum's hooks to find."""

    def __new__(cls):
        torch = oracle("torch")

        class Module(torch.nn.Module):
            def forward(self, x):
                return torch.nn.functional.relu(x)

        return Module()


def test_unhooked_relu_f_relu_in_the_classifier(vgg):
    """Captum GuidedBackprop on the same model with the classifier's ReLUs written as F.relu."""
    import copy

    net, model, x = vgg
    functional = copy.deepcopy(model)
    functional.classifier[1] = FunctionalReLU()
    functional.classifier[4] = FunctionalReLU()
    result = verify(net, x, captum(functional, x, "guided"), "guided", TARGETS, tol=TOL)
    best = result.diagnosis[0]
    assert best.cause == "unhooked-relu" and "classifier.1, classifier.4" in best.detail, result.lines()


def relu_first_net(double: bool):
    """A chain that starts with a ReLU (and, with ``double``, has two ReLUs in a row after a conv)."""
    layers = [mc.ReLU(name="r0"), mc.Conv2D(3, 4, 3, padding=1, name="c1"), mc.ReLU(name="r1")]
    layers += [mc.ReLU(name="r2")] if double else []
    layers += [mc.MaxPool2D(2, name="p1"), mc.Flatten(name="f"), mc.Dense(4 * 4 * 4, 5, name="d")]
    net = mc.Sequential(layers, meta={"preprocess": "none", "input_shape": [3, 8, 8]}, seed=3)
    return net.astype(np.float64)


def test_relu_rule_captum_deconvolution_through_two_relus():
    """Captum 0.9's Deconvolution on a model with two ReLUs in a row (r1, r2): DeconvNet with the
    guided rule at that pair."""
    from minicnn.tools.captum_reference import torch_mirror

    torch = oracle("torch")
    net = relu_first_net(double=True)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8))
    ref = captum(torch_mirror(net), torch.from_numpy(x).clone().numpy(), "deconvnet", target=[1, 2])
    result = verify(net, x, ref, "deconvnet", [1, 2], tol=TOL)
    assert not result.agree
    best = result.diagnosis[0]
    assert (best.cause, best.detail) == ("relu-rule", "the guided rule at the ReLUs r1-r2"), result.lines()
    assert best.residual < 1e-12


def test_stale_state_guided_after_deconvolution_on_the_same_tensor():
    """Captum 0.9: GuidedBackprop after Deconvolution on the SAME input tensor, model starting with
    a ReLU, returns the Deconvolution map. Run in a child so that no earlier call shares state."""
    import subprocess
    import sys

    oracle("captum")
    net = relu_first_net(double=False)
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8))
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp())
    mc.save(net, folder / "net.h5")
    np.save(folder / "x.npy", x)
    code = f"""
import warnings, numpy as np, torch, minicnn as mc, captum.attr as A
warnings.simplefilter("ignore")
from minicnn.tools.captum_reference import torch_mirror
net = mc.load({str(folder / "net.h5")!r}).astype(np.float64)
xt = torch.from_numpy(np.load({str(folder / "x.npy")!r}))
A.Deconvolution(torch_mirror(net)).attribute(xt, target=1)
guided = A.GuidedBackprop(torch_mirror(net)).attribute(xt, target=1)
np.save({str(folder / "guided.npy")!r}, guided.detach().numpy())
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, capture_output=True)
    net = mc.load(folder / "net.h5").astype(np.float64)
    result = verify(net, x, np.load(folder / "guided.npy"), "guided", 1, tol=TOL)
    assert not result.agree, "Captum no longer returns the stale map: update the atlas"
    assert "stale-state" in causes(result)
    assert first(result, "stale-state").residual < 1e-12


def test_float32_ties_against_a_float64_reference():
    """Captum in float64 on the same weights: minicnn's float32 map disagrees, its float64 map is
    the reference, and the ReLU signs float32 flipped are counted (measured against float64)."""
    import copy

    from minicnn.tools.captum_reference import captum_map
    from minicnn.tools.diagnosis_maps import flipped_decisions

    net, x = near_tie_net()
    wide = copy.deepcopy(net).astype(np.float64)
    ref = captum_map(wide, x.astype(np.float64), "gradient", [1])
    result = verify(net, x, ref, "gradient", 1, tol=1e-4)
    relu, pool = flipped_decisions(net, x)
    assert relu > 0 and pool == 0
    assert not result.agree and causes(result)[0] == "float32-ties", result.lines()
    assert f"float32 flipped {relu} ReLU signs" in result.diagnosis[0].detail
    assert result.diagnosis[0].residual < 1e-6


def test_method_from_the_registry_integrated_gradients(vgg):
    """Captum's IntegratedGradients (50 Gauss-Legendre steps, baseline 0) is a registry method that
    verify compares, and, given for gradient_x_input, is named by the "method" hypothesis."""
    torch = oracle("torch")
    attr = oracle("captum.attr")
    net, model, x = vgg
    ig = attr.IntegratedGradients(model).attribute(
        torch.from_numpy(x), target=TARGETS, n_steps=50, method="gausslegendre"
    )
    ig = ig.detach().numpy()
    assert verify(net, x, ig, "integrated-gradients", TARGETS, tol=1e-6).agree
    result = verify(net, x, ig, "gradient_x_input", TARGETS, tol=1e-6)
    assert (result.diagnosis[0].cause, result.diagnosis[0].detail) == (
        "method",
        "minicnn's integrated-gradients map",
    ), result.lines()


def test_layout_height_and_width_swapped_on_a_non_square_map():
    """A 16x24 image's map saved as 24x16 (an image library's (x, y) order) fits no layout as read:
    verify compares it transposed back, names the cause, and never calls it agreeing."""
    net = mc.Sequential(
        [mc.Conv2D(3, 4, 3, padding=1, name="c1"), mc.ReLU(name="r1"), mc.GlobalAvgPool2D(name="g"),
         mc.Dense(4, 3, name="d")],
        meta={"preprocess": "none", "input_shape": [3, 16, 24]}, seed=2,
    ).astype(np.float64)  # fmt: skip
    x = np.random.default_rng(4).standard_normal((1, 3, 16, 24))
    g = net.run(x).backward(np.eye(3)[[1]], mode="gradient")
    result = verify(net, x, g.transpose(0, 1, 3, 2), "gradient", 1, tol=TOL)
    assert result.transposed and not result.agree and result.max_rel_diff < 1e-12
    assert causes(result) == ["layout"] and "the map is 24 x 16" in result.diagnosis[0].detail
    result = verify(net, x, g.transpose(0, 3, 2, 1), "gradient", 1, tol=TOL)  # NHWC, W and H swapped
    assert result.transposed and causes(result) == ["layout"]
    with pytest.raises(mc.MinicnnError, match="fits none of the layouts"):
        verify(net, x, g[:, :, :8], "gradient", 1)


def test_unhooked_relu_standalone_keras_relu(tmp_path):
    """tf-keras-vis changes only layers with an ``activation`` attribute: a standalone Keras ``ReLU``
    layer keeps the gradient rule. A Keras file with both kinds (conv1's activation, the layer
    relu2), read by minicnn; the reference is Captum's GuidedBackprop on minicnn's torch mirror with
    relu2 called as F.relu (hooks miss it as tf-keras-vis's model modifier does)."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = oracle("keras")
    from minicnn.tools.captum_reference import torch_mirror

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1"),
        keras.layers.Conv2D(4, 3, padding="same", name="conv2"),
        keras.layers.ReLU(name="relu2"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(3, name="scores"),
    ])  # fmt: skip
    model.save(tmp_path / "mixed.h5")
    net = mc.load(tmp_path / "mixed.h5").astype(np.float64)
    assert [layer.name for layer in net.layers if layer.is_rectifier] == ["conv1_relu", "relu2"]
    mirror = torch_mirror(net)
    mirror[net.index("relu2")] = FunctionalReLU()
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8))
    ref = captum(mirror, x, "guided", target=[1])
    result = verify(net, x, ref, "guided", 1, tol=TOL)
    best = result.diagnosis[0]
    assert best.cause == "unhooked-relu" and best.detail.startswith("the standalone ReLU layers"), (
        result.lines()
    )
