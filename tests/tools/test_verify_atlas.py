"""The framework atlas (benchmarks/ATLAS.md): the README's counts are the atlas's, and each of its
findings not tested elsewhere is a test here, on the framework itself (float64, the atlas's nets).

Tested elsewhere: Captum Deconvolution through two ReLUs (relu-rule), Captum GuidedBackprop with
F.relu (unhooked-relu) and after Deconvolution on one tensor (stale-state) in test_diagnosis.py;
pytorch-grad-cam's per-image scaling of Grad-CAM in tests/cli/test_verify_torch_model.py."""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch_models as tm
from frameworks import zennit
from support import oracle

import minicnn as mc
from minicnn.tools.verify import verify

ROOT = Path(__file__).resolve().parents[2]
SIZE = 32
TARGETS = [3, 7]


def test_readme_gives_the_atlas_counts():
    atlas = (ROOT / "benchmarks" / "ATLAS.md").read_text(encoding="utf-8")
    cells, agree, disagree, fail = map(
        int, re.search(r"Counts: (\d+) cells, (\d+) agree, (\d+) disagree, (\d+) fail", atlas).groups()
    )
    assert cells == agree + disagree + fail
    assert atlas.count("| agree") + atlas.count("| DISAGREE") + atlas.count("| fails") >= cells
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"{cells} cells, {agree} agree, {disagree} disagree, {fail} fail" in readme
    assert "benchmarks/ATLAS.md" in readme


@pytest.fixture(scope="module")
def vgg(tmp_path_factory):
    torch = oracle("torch")
    path = tm.save(tm.torchvision_vgg(bn=False), tmp_path_factory.mktemp("atlas") / "vgg.pth", "zip")
    model = tm.torchvision_vgg(bn=False).to(torch.float64).eval()
    x = mc.preprocess(tm.images(2, SIZE, seed=7), "torch", dtype=np.float64)
    return mc.load(path).astype(np.float64), model, x


def functional_classifier(model):
    """The model with its classifier's ReLUs called as F.relu (no nn.ReLU module there)."""
    torch = oracle("torch")

    class Functional(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.relu(x)

    model = copy.deepcopy(model)
    model.classifier[1], model.classifier[4] = Functional(), Functional()
    return model


@pytest.mark.parametrize("method", ["guided", "deconvnet"])
def test_zennit_composites_leave_f_relu_unhooked(vgg, method):
    """Zennit's composites map nn.ReLU modules: F.relu in forward keeps the gradient rule."""
    torch = oracle("torch")
    zennit()
    from zennit.attribution import Gradient
    from zennit.composites import GuidedBackprop, LayerMapComposite
    from zennit.rules import ReLUDeconvNet

    net, model, x = vgg
    composite = (
        GuidedBackprop() if method == "guided" else LayerMapComposite([(torch.nn.ReLU, ReLUDeconvNet())])
    )
    onehot = torch.eye(10, dtype=torch.float64)[TARGETS]
    with Gradient(model=functional_classifier(model), composite=composite) as attributor:
        _, relevance = attributor(torch.from_numpy(x), onehot)
    result = verify(net, x, relevance.detach().numpy(), method, TARGETS, tol=1e-6)
    first = result.diagnosis[0]
    assert first.cause == "unhooked-relu" and "classifier.1, classifier.4" in first.detail, result.lines()
    with Gradient(model=model, composite=composite) as attributor:  # the same with nn.ReLU: agrees
        _, relevance = attributor(torch.from_numpy(x), onehot)
    assert verify(net, x, relevance.detach().numpy(), method, TARGETS, tol=1e-6).agree


def grad_cam_library():
    if importlib.util.find_spec("pytorch_grad_cam") is None:
        oracle("pytorch_grad_cam")  # skipped without it (pip install --no-deps grad-cam ttach), fails in CI
    from minicnn.tools.torch_model_reference import stand_in_torchvision

    stand_in_torchvision(oracle("torch"))
    import pytorch_grad_cam

    return pytorch_grad_cam


def test_grad_cam_library_guided_on_a_batch_explains_image_0(vgg):
    """GuidedBackpropReLUModel given two images returns ONE (H, W, C) map: image 0's."""
    torch = oracle("torch")
    grad_cam_library()
    from pytorch_grad_cam.guided_backprop import GuidedBackpropReLUModel

    net, model, x = vgg
    out = GuidedBackpropReLUModel(copy.deepcopy(model), device="cpu")(torch.from_numpy(x).clone(), TARGETS[0])
    assert out.shape == (SIZE, SIZE, 3)
    assert verify(net, x[:1], out[None], "guided", TARGETS[:1], tol=1e-9).agree
    # given for the batch as the library returned it: one map for two images, named "batch", never agreeing
    result = verify(net, x, out, "guided", [TARGETS[0]] * 2, tol=1e-9)
    assert result.single and not result.agree and result.layout == "HWC"
    best = result.diagnosis[0]
    assert (best.cause, best.residual < 1e-12) == ("batch", True), result.lines()
    assert best.detail == "one map given for a batch of 2 images: image 0's, the others not explained"
    ours1 = verify(net, x[1:], out[None], "guided", [TARGETS[0]], tol=1e-9)
    assert result.max_rel_diff == pytest.approx(ours1.max_rel_diff, rel=1e-12) and result.max_rel_diff > 1e-2
    with pytest.raises(mc.MinicnnError, match=r"fits none of the layouts .* \(2, 3, 32, 32\)"):
        verify(net, x, out[:8], "guided", [TARGETS[0]] * 2)  # one image's map of another size: the message


def test_grad_cam_library_leaves_one_shared_relu(vgg):
    """After GuidedBackpropReLUModel the model's ReLUs are one nn.ReLU instance, so Captum's
    LayerGradCam at features.9 hooks its last use (the classifier's, (N, 32)) and returns (N, 1)."""
    torch = oracle("torch")
    attr = oracle("captum.attr")
    grad_cam_library()
    from pytorch_grad_cam.guided_backprop import GuidedBackpropReLUModel

    net, model, x = vgg
    model = copy.deepcopy(model)
    before = len({id(m) for m in model.modules() if isinstance(m, torch.nn.ReLU)})
    GuidedBackpropReLUModel(model, device="cpu")(torch.from_numpy(x[:1]).clone(), TARGETS[0])
    after = len({id(m) for m in model.modules() if isinstance(m, torch.nn.ReLU)})
    assert (before, after) == (6, 1)
    cam = attr.LayerGradCam(model, model.get_submodule("features.9")).attribute(
        torch.from_numpy(x), target=TARGETS
    )
    assert tuple(cam.shape) == (2, 1)


def test_grad_cam_library_map_is_zero_at_a_1x1_layer():
    """pytorch-grad-cam scales each map by (m - min) / (max - min): one value becomes 0, so a ResNet-18's
    last block at 32x32 (1x1) gets an all-zero map, which verify refuses to compare with."""
    torch = oracle("torch")
    grad_cam_library()
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from resnet_torch import torch_resnet

    model = torch_resnet("resnet18", classes=10).to(torch.float64).eval()
    x = torch.from_numpy(mc.preprocess(tm.images(1, SIZE, seed=7), "torch", dtype=np.float64))
    with GradCAM(model=model, target_layers=[model.layer4[-1]]) as cam:
        out = cam(input_tensor=x, targets=[ClassifierOutputTarget(3)])
    assert out.shape == (1, SIZE, SIZE) and np.all(out == 0)


def test_grad_cam_library_guided_accumulates_on_one_tensor(vgg):
    """pytorch-grad-cam issue #401: GuidedBackpropReLUModel twice on ONE input tensor returns the sum
    of both calls' gradients (it never zeroes .grad), and every map it returned is a view of that
    .grad, so a map of class 3 kept from the first call becomes the later map of class 7 too. verify
    names the second identical call's map "scale" x2; a fresh tensor per call agrees."""
    torch = oracle("torch")
    grad_cam_library()
    from pytorch_grad_cam.guided_backprop import GuidedBackpropReLUModel

    net, model, x = vgg
    gbp = GuidedBackpropReLUModel(copy.deepcopy(model), device="cpu")
    xt = torch.from_numpy(x[:1].copy())
    first = gbp(xt, TARGETS[0])
    kept = first.copy()
    second = gbp(xt, TARGETS[0]).copy()
    assert verify(net, x[:1], kept[None], "guided", TARGETS[:1], tol=1e-9).agree
    result = verify(net, x[:1], second[None], "guided", TARGETS[:1], tol=1e-9)
    best = result.diagnosis[0]
    assert not result.agree and (best.cause, best.detail) == ("scale", "the map is minicnn's times 2"), (
        result.lines()
    )
    other = gbp(xt, TARGETS[1])
    assert np.array_equal(first, other)  # the class-3 map returned first now reads as the class-7 call's
    assert not np.array_equal(first, kept)
    fresh = gbp(torch.from_numpy(x[:1].copy()), TARGETS[1])
    assert verify(net, x[:1], fresh[None], "guided", TARGETS[1:], tol=1e-9).agree


@pytest.mark.parametrize("framework", ["captum deconvnet", "grad-cam guided"])
def test_f_relu_unhooked_by_captum_deconvolution_and_grad_cam_guided(vgg, framework):
    """The atlas's other F.relu findings: Captum's Deconvolution and pytorch-grad-cam's
    GuidedBackpropReLUModel (which swaps nn.ReLU modules only) leave F.relu with the gradient rule;
    with nn.ReLU the same call agrees."""
    torch = oracle("torch")
    attr = oracle("captum.attr")
    net, model, x = vgg
    method = framework.split()[1]

    def reference(m):
        if framework == "captum deconvnet":
            return attr.Deconvolution(m).attribute(torch.from_numpy(x), target=TARGETS).detach().numpy()
        grad_cam_library()
        from pytorch_grad_cam.guided_backprop import GuidedBackpropReLUModel

        return np.stack([GuidedBackpropReLUModel(copy.deepcopy(m), device="cpu")(
            torch.from_numpy(x[i : i + 1].copy()), t) for i, t in enumerate(TARGETS)])  # fmt: skip

    result = verify(net, x, reference(functional_classifier(model)), method, TARGETS, tol=1e-6)
    first = result.diagnosis[0]
    assert first.cause == "unhooked-relu" and "classifier.1, classifier.4" in first.detail, result.lines()
    assert verify(net, x, reference(model), method, TARGETS, tol=1e-6).agree
