"""Every tool on a residual network: a torchvision-layout ResNet-18 state dict (random weights and
BatchNorm statistics, 10 classes) saved by torch, loaded by minicnn in float64, 64 x 64 inputs.

Each tool's numbers are checked against an independent reference: the torch model itself in
float64 (autograd for gradients, the three backward rules by a ReLU whose backward follows the
rule, forward hooks for activations), Captum (LayerGradCam, Occlusion), or a brute-force scan.
The BatchNorms are folded into float32 weights at load, so agreement is 1e-6 (relative to the
largest value), the fold's rounding.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from support import assert_close, oracle

import minicnn as mc

TARGETS = [3, 7]


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """(torch ResNet-18 float64 eval, path of its .pth, minicnn net float64, x (2, 3, 64, 64))."""
    from resnet_torch import saved_resnet18

    return saved_resnet18(tmp_path_factory.mktemp("every"), seed=4, x_seed=9)


def torch_gradient(model, x, targets):
    """dS_t/dx by torch autograd, (N, C, H, W) float64."""
    torch = oracle("torch")
    tx = torch.tensor(x, requires_grad=True)
    out = model(tx)
    out[torch.arange(len(x)), torch.as_tensor(targets)].sum().backward()
    return tx.grad.numpy()


def tap(model, module, x, call=-1, what="output"):
    """The output (or input) of ``module`` in a forward pass of x, (N, ...) numpy; ``call`` picks
    one call of a module used twice (a BasicBlock's ReLU runs after bn1 and after the sum). Inputs
    are copied before the call: torchvision's ReLU works in place."""
    torch = oracle("torch")
    seen = []
    if what == "input":
        hook = module.register_forward_pre_hook(lambda m, i: seen.append(i[0].detach().clone()))
    else:
        hook = module.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    with torch.no_grad():
        model(torch.as_tensor(x))
    hook.remove()
    return seen[call].numpy()


# -- saliency, SmoothGrad, gradient x input ---------------------------------------------------------
def test_saliency_smoothgrad_and_times_input_equal_torch_autograd(resnet):
    """Simonyan et al.'s map (max over channels of |dS/dx|), gradient x input (Shrikumar et al.)
    and SmoothGrad (Smilkov et al., the mean gradient over noisy copies, before |.| and max) equal
    the same quantities from torch autograd of the original model."""
    from minicnn.tools.saliency import smoothgrad_noise

    model, _, net, x = resnet
    grad = torch_gradient(model, x, TARGETS)
    ours = mc.saliency(net, x, TARGETS, signed=True, progress=False)
    assert_close(ours, grad, 1e-6, "signed gradient")
    assert_close(mc.saliency(net, x, TARGETS, progress=False), np.abs(grad).max(axis=1), 1e-6, "saliency")
    assert_close(mc.saliency(net, x, TARGETS, signed=True, times_input=True, progress=False), grad * x, 1e-6,
                 "gradient x input")  # fmt: skip
    noisy = [torch_gradient(model, x + eps, TARGETS) for eps in smoothgrad_noise(x, 4, 0.15, seed=3)]
    smooth = mc.saliency(net, x, TARGETS, samples=4, noise=0.15, seed=3, progress=False)
    assert_close(smooth, np.abs(np.mean(noisy, axis=0)).max(axis=1), 1e-6, "SmoothGrad")
    assert np.abs(smooth - np.abs(grad).max(axis=1)).max() > 1e-3 * np.abs(grad).max()  # noise mattered


# -- the three reconstructions ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["deconvnet", "guided", "gradient"])
@pytest.mark.parametrize("layer, module", [("layer3.0", "layer3.0"), ("layer2.1", "layer2.1")])
def test_reconstructions_from_a_block_equal_torch_with_the_rule(resnet, mode, layer, module):
    """mc.reconstruct from each image's strongest unit of a block's output (the signal: its value
    there, zero elsewhere) equals torch's backward from that unit through the original model whose
    every ReLU applies ``mode`` (Zeiler & Fergus's DeconvNet, Springenberg et al.'s guided
    backpropagation, the gradient), the signals of the two branches added at every sum by torch's
    own chain rule."""
    torch = oracle("torch")
    from resnet_torch import with_rule

    model, _, net, x = resnet
    ruled = with_rule(copy.deepcopy(model), mode)
    seen = {}
    block = ruled.get_submodule(module)
    hook = block.register_forward_hook(lambda m, i, o: seen.update(a=o))
    tx = torch.tensor(x, requires_grad=True)
    ruled(tx)
    hook.remove()
    a = seen["a"]
    flat = a.detach().reshape(len(x), -1).argmax(dim=1)
    dy = torch.zeros_like(a).reshape(len(x), -1)  # the strongest activation's value there, 0 elsewhere
    dy[torch.arange(len(x)), flat] = a.detach().reshape(len(x), -1)[torch.arange(len(x)), flat]
    a.backward(dy.reshape(a.shape))
    ours = mc.reconstruct(net, x, layer, mode=mode)
    assert_close(ours, tx.grad.numpy(), 1e-6, f"{mode} from {layer}")


# -- CAM and Grad-CAM -------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", ["layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer4.1"])
def test_grad_cam_on_any_block_equals_captum_layer_grad_cam(resnet, layer):
    """Grad-CAM (Selvaraju et al. 2017, eq. 1-2) at a block's output equals Captum's LayerGradCam
    on the torch module of that block (ReLU applied, at the layer's resolution)."""
    torch = oracle("torch")
    from captum.attr import LayerGradCam

    model, _, net, x = resnet
    ref = LayerGradCam(model, model.get_submodule(layer)).attribute(torch.tensor(x), target=TARGETS)
    ref = ref[:, 0].detach().numpy()  # Captum's signed map: sum_k alpha_k A_k before the ReLU
    ours = mc.grad_cam(net, x, TARGETS, layer=layer, upsample=False)
    assert ours.shape == ref.shape
    # measured against the signed map's size: on this random network the maps of layer1.1 and
    # layer2.0 are negative everywhere (Grad-CAM's ReLU leaves zeros), the deeper ones are not
    assert_close(ours, np.maximum(ref, 0), 1e-6, f"Grad-CAM at {layer}", scale=np.abs(ref).max())
    assert (ours > 0).any() == (layer not in ("layer1.1", "layer2.0"))


def test_cam_is_grad_cam_on_layer4(resnet):
    """ResNet ends in global average pooling then fc, so CAM (Zhou et al. 2016) is defined and
    Grad-CAM on layer4's output is ReLU(CAM) / (h w) (Selvaraju et al., sec. 3.1): measured, not
    assumed, with CAM computed from torch's layer4 output and fc weights."""
    model, _, net, x = resnet
    cam = mc.cam(net, x, TARGETS, upsample=False)
    feats = tap(model, model.layer4, x)
    ref = np.einsum("nk,nkhw->nhw", model.fc.weight.detach().numpy()[TARGETS], feats)
    assert_close(cam, ref, 1e-6, "CAM from torch's layer4 and fc")
    h, w = cam.shape[1:]
    assert_close(mc.grad_cam(net, x, TARGETS, layer="layer4.1", upsample=False), np.maximum(ref, 0) / (h * w),
                 1e-6, "Grad-CAM on layer4 = ReLU(CAM) / hw")  # fmt: skip


# -- occlusion --------------------------------------------------------------------------------------
def test_occlusion_equals_captum_occlusion(resnet):
    """The incremental occlusion map (every branch its own changed region) equals Captum's
    Occlusion on the torch model with the same window, stride and zero baseline."""
    torch = oracle("torch")
    from captum.attr import Occlusion

    model, _, net, x = resnet
    res = mc.occlusion(net, x, TARGETS, size=16, stride=8, fill="zero", progress=False)
    ref = Occlusion(model).attribute(torch.tensor(x), sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8),
                                     baselines=0.0, target=TARGETS)  # fmt: skip
    ref = ref.numpy()
    assert np.allclose(ref, ref[:, :1])  # Captum's map is the same on every channel
    assert_close(res.attribution, ref[:, 0], 1e-6, "occlusion attribution")


# -- class models, maximize, invert -----------------------------------------------------------------
def test_class_model_is_torch_gradient_ascent(resnet):
    """Simonyan et al.'s class model with the penalty off (l2 = 0): three steps of plain ascent
    I <- I + lr dS_c/dI from the zero image (the mean under torch preprocessing) equal the same
    steps by torch autograd, and the recorded objective is torch's score at each step."""
    torch = oracle("torch")
    model, _, net, _ = resnet
    res = mc.class_model(net, [2, 5], steps=3, lr=0.5, l2=0.0, input_shape=(3, 64, 64), progress=False)
    image, scores = torch.zeros((2, 3, 64, 64), dtype=torch.float64), []
    for _ in range(3):
        image.requires_grad_(True)
        s = model(image)[[0, 1], [2, 5]]
        scores.append(s.detach().numpy())
        s.sum().backward()
        image = (image + 0.5 * image.grad).detach()
    assert_close(res.image, image.numpy(), 1e-6, "class model image")
    assert_close(np.asarray(res.info["objective"])[:, :3], np.array(scores).T, 1e-6, "scores per step")


def test_maximize_a_block_output_climbs_the_sum(resnet):
    """Maximising a block's output (a ReLU) climbs its input, the residual sum (tools/maximize.py):
    the objective at the start is the mean of channel 5 of the sum, read from torch's block."""
    model, _, net, _ = resnet
    res = mc.maximize(net, "layer3.0", 5, starts=2, steps=1, seed=0, input_shape=(3, 64, 64), progress=False)
    start = res.info["start"]
    summed = tap(model, model.layer3[0].relu, start, call=-1, what="input")  # the ReLU's second call
    assert_close(np.asarray(res.info["objective"])[:, 0], summed[:, 5].mean(axis=(1, 2)), 1e-6, "objective")


def test_invert_reports_the_feature_error_torch_measures(resnet):
    """Mahendran & Vedaldi's inversion of layer3.1: the reported final error is
    ||phi(x*) - phi(x)|| / ||phi(x)|| measured on torch's layer3[1] output, and it fell."""
    model, _, net, x = resnet
    res = mc.invert(net, x[:1], "layer3.1", steps=4, seed=0, progress=False)
    phi0, phi = tap(model, model.layer3[1], x[:1]), tap(model, model.layer3[1], np.asarray(res.image))
    ref = np.linalg.norm(phi - phi0) / np.linalg.norm(phi0)
    assert_close(res.info["final_error"], ref, 1e-6, "final feature error")
    assert res.info["final_error"][0] < res.info["error"][0, 0]


# -- top-9, localize --------------------------------------------------------------------------------
def test_topk_equals_a_brute_force_scan_of_torch_activations(resnet):
    """The k strongest images per feature map of layer2.1 (max over positions in each image) equal
    a brute-force sort of torch's layer2[1] output over the dataset; projections are DeconvNet
    reconstructions cropped to the unit's receptive field (zero outside it)."""
    model, _, net, _ = resnet
    images = np.random.default_rng(11).standard_normal((7, 3, 64, 64))
    res = mc.topk(net, images, "layer2.1", k=3, channels=[0, 9, 30], batch_size=4, progress=False)
    feats = tap(model, model.layer2[1], images)
    for row, c in enumerate([0, 9, 30]):
        best = feats[:, c].reshape(len(images), -1).max(axis=1)
        order = np.argsort(-best, kind="stable")[:3]
        assert list(res.index[row]) == list(order), c
        assert_close(res.values[row], best[order], 1e-6, f"values of channel {c}")
        for j, n in enumerate(order):
            y, xx = np.unravel_index(feats[n, c].argmax(), feats.shape[2:])
            assert tuple(res.position[row, j]) == (y, xx)
    full = mc.reconstruct(net, images[res.index[0, 0]], "layer2.1", unit=(0, *res.position[0, 0]))
    x0, y0, x1, y1 = res.boxes[0, 0]
    inside = np.zeros(full.shape[2:], bool)
    inside[max(y0, 0) : y1, max(x0, 0) : x1] = True
    assert np.abs(full[0][:, ~inside]).max() == 0 and np.abs(full).max() > 0


def test_localize_uses_the_class_gradient(resnet):
    """Simonyan et al.'s localisation from the saliency map: the boxes from minicnn's own map
    equal the boxes from torch's map (max over channels of |dS/dx|), and lie inside the image."""
    model, _, net, x = resnet
    grad = torch_gradient(model, x, TARGETS)
    ours = mc.localize(net, x, TARGETS, progress=False)
    theirs = mc.localize(net, x, TARGETS, saliency_map=np.abs(grad).max(axis=1), progress=False)
    assert np.array_equal(ours.boxes, theirs.boxes) and np.array_equal(ours.masks, theirs.masks)
    assert (ours.boxes[:, :2] >= 0).all() and (ours.boxes[:, 2:] <= 64).all()
    assert (ours.boxes[:, 2:] > ours.boxes[:, :2]).all()


# -- sanity checks ----------------------------------------------------------------------------------
def test_cascading_randomization_maps_equal_torch_gradients_of_each_network(resnet):
    """Adebayo et al.'s cascading randomisation on the graph: step 0 is the trained gradient map
    and each later step the gradient of the network re-initialised so far, both from torch autograd
    of a torch mirror of that network (channels summed, as the test stores them)."""
    from minicnn.tools.captum_reference import torch_mirror
    from minicnn.tools.sanity import randomized_networks

    model, _, net, x = resnet
    layers = ["fc", "layer4.1.conv2", "layer4.1.conv1"]
    res = mc.randomization_test(net, x, TARGETS, methods=("gradient",), layers=layers, seed=1)
    maps = np.asarray(res.maps["gradient"])
    assert maps.shape == (4, 2, 64, 64)
    assert_close(maps[0], torch_gradient(model, x, TARGETS).sum(axis=1), 1e-6, "trained")
    for step, (_, randomized) in enumerate(randomized_networks(net, layers, seed=1), start=1):
        ref = torch_gradient(torch_mirror(randomized), x, TARGETS).sum(axis=1)
        assert_close(maps[step], ref, 1e-6, f"step {step}")
    assert np.abs(maps[3] - maps[0]).max() > 0.1 * np.abs(maps[0]).max()  # randomisation changed it


# -- dataset jobs -----------------------------------------------------------------------------------
def test_attribute_and_topk_jobs_on_a_resnet_file(resnet, tmp_path):
    """``minicnn attribute`` and ``minicnn topk`` on a folder of PNGs with the ResNet .pth (float32,
    torch preprocessing from the file's meta, shards of 2 images): each saliency file equals
    mc.saliency of that image alone (itself checked against torch autograd above: in float32 a ReLU
    input near 0 can flip, and torch's own float32 gradient differs from its float64 one by 3% on
    one of these images), and the top-2 per feature map of layer2.1 equal a brute-force sort of
    torch's layer2[1] output (1e-4: a float32 forward pass against float64)."""
    from PIL import Image

    from minicnn.cli.main import main

    model, path, _, _ = resnet
    folder, out = tmp_path / "photos", tmp_path / "out"
    folder.mkdir()
    pixels = np.random.default_rng(12).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    for i, p in enumerate(pixels):
        Image.fromarray(p).save(folder / f"p{i}.png")
    x = mc.preprocess(pixels, "torch").astype(np.float64)
    args = ["attribute", "--weights", str(path), "--image", str(folder), "--target", "3", "--shard-size", "2",
            "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    net32 = mc.load(path)
    for i in range(3):
        expected = mc.saliency(net32, x[i : i + 1].astype(np.float32), 3, progress=False)[0]
        with np.load(out / "saliency" / f"p{i}.npz") as data:
            assert_close(data["saliency"], expected, 1e-4, f"saliency file {i}")
    args = ["topk", "--weights", str(path), "--image", str(folder), "--layer", "layer2.1", "--k", "2",
            "--channels", "0", "9", "--shard-size", "2", "--save-arrays", "--no-progress",
            "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    with np.load(out / "layer2.1_top2.npz") as data:
        values, index = data["values"], data["index"]
    feats = tap(model, model.layer2[1], x)
    for row, c in enumerate([0, 9]):
        best = feats[:, c].reshape(3, -1).max(axis=1)
        order = np.argsort(-best, kind="stable")[:2]
        assert list(index[row]) == list(order), c
        assert_close(values[row], best[order], 1e-4, f"top-2 values of channel {c}")
