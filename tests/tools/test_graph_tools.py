"""Tools on graph networks (residual blocks): receptive fields, Captum's references, the
equivalence table, Grad-CAM's default layer and incremental occlusion, each against an independent reference.

References: brute-force perturbation (receptive fields: perturb one input pixel, see which units
change), Captum on a torch module that runs the nodes in order (float64), torch autograd, CAM
(Zhou et al. 2016) where Grad-CAM reduces to it (Selvaraju et al. 2017, sec. 3.1), and a naive
occlusion loop.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.tools.topk import receptive_field, unit_boxes


def small_resnet(seed=0, channels=1, width=8):
    """A stem with a padded max-pool, a block with a 1x1 stride-2 projection shortcut and one with
    an identity shortcut, global average pooling and a classifier: a miniature ResNet, float64."""
    w = width
    nodes = [
        mc.Conv2D(channels, w, 3, padding=1, name="conv1"),
        mc.ReLU(name="relu"),
        mc.MaxPool2D(3, stride=2, padding=1, name="maxpool"),
        mc.Conv2D(w, w, 3, stride=2, padding=1, name="b1.conv1"),
        mc.ReLU(name="b1.relu1"),
        mc.Conv2D(w, w, 3, padding=1, name="b1.conv2"),
        (mc.Conv2D(w, w, 1, stride=2, name="b1.downsample"), "maxpool"),
        (mc.Add(name="b1.add"), ("b1.conv2", "b1.downsample")),
        mc.ReLU(name="b1"),
        mc.Conv2D(w, w, 3, padding=1, name="b2.conv1"),
        mc.ReLU(name="b2.relu1"),
        mc.Conv2D(w, w, 3, padding=1, name="b2.conv2"),
        (mc.Add(name="b2.add"), ("b2.conv2", "b1")),
        mc.ReLU(name="b2"),
        mc.GlobalAvgPool2D(name="avgpool"),
        mc.Dense(w, 5, name="fc"),
    ]
    net = mc.Graph(nodes, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if "bias" in layer.params:
            layer.bias = rng.uniform(-0.3, 0.3, layer.bias.shape)
    return net


def branch_then_shortcut(dtype=np.float32):
    """A block whose branch ReLU ``a.relu`` runs after the shortcut conv: the node run just before
    a layer is not always the node it reads. Input (1, 8, 8), 3 classes."""
    nodes = [
        mc.Conv2D(1, 4, 3, padding=1, name="conv"),
        mc.ReLU(name="relu"),
        (mc.Conv2D(4, 4, 3, padding=1, name="a"), "relu"),
        (mc.Conv2D(4, 4, 1, name="shortcut"), "relu"),
        (mc.ReLU(name="a.relu"), "a"),
        (mc.Add(name="add"), ("a.relu", "shortcut")),
        mc.GlobalAvgPool2D(name="gap"),
        mc.Dense(4, 3, name="fc"),
    ]
    return mc.Graph(nodes, seed=0, dtype=dtype, meta={"input_shape": (1, 8, 8)})


# -- receptive fields ---------------------------------------------------------------------------
def perturbed_boxes(net, layer, shape):
    """Per unit (y, x) of ``layer``: the bounding box (x0, y0, x1, y1) of the input pixels whose
    perturbation (by +-1e3, one pixel at a time) changes the unit in some channel."""
    c, h, w = shape
    base = np.random.default_rng(1).random((1, *shape))
    batch = np.repeat(base, 2 * h * w, axis=0)
    for p in range(h * w):
        batch[2 * p, :, p // w, p % w] += 1e3
        batch[2 * p + 1, :, p // w, p % w] -= 1e3
    out = net.forward(batch, stop=layer)
    ref = net.forward(base, stop=layer)
    changed = (np.abs(out - ref) > 1e-9).any(axis=1).reshape(h * w, 2, *out.shape[2:]).any(axis=1)
    boxes = {}
    for y in range(out.shape[2]):
        for x in range(out.shape[3]):
            ys, xs = np.divmod(np.nonzero(changed[:, y, x])[0], w)
            boxes[y, x] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return boxes


@pytest.mark.parametrize("layer", ["b1.downsample", "b1.add", "b1", "b2.add", "b2"])
def test_receptive_field_through_a_graph_is_the_perturbed_support(layer):
    """The window of every unit (clipped to the image) is the bounding box of the input pixels that
    change it: the union over the block's two paths, not the composition of every listed layer."""
    net = small_resnet()
    shape = (1, 32, 32)
    boxes = perturbed_boxes(net, layer, shape)
    ys, xs = np.meshgrid(*(np.arange(n) for n in net.shapes(shape)[net.index(layer)][1:]), indexing="ij")
    ours = unit_boxes(net, layer, shape, np.stack([ys, xs], axis=-1))
    for (y, x), box in boxes.items():
        x0, y0, x1, y1 = ours[y, x]
        assert (max(x0, 0), max(y0, 0), min(x1, 32), min(y1, 32)) == box, (layer, y, x)
    # the numbers by hand: conv1 3 -> maxpool 3+2=5, jump 2 -> b1.conv1 5+2*2=9, jump 4 -> b1.conv2
    # 9+2*4=17; the shortcut 5 (jump 4) lies inside; b2 adds two 3x3 convs at jump 4: 17+8+8=33
    size = {"b1.downsample": 5, "b1.add": 17, "b1": 17, "b2.add": 33, "b2": 33}[layer]
    assert receptive_field(net, layer)[:2] == ((size, size), (4, 4))


def test_receptive_field_of_inputs_with_different_strides_is_refused():
    from minicnn.tools.topk import union

    with pytest.raises(MinicnnError, match="different strides"):
        union("add", [((3, 3), (2, 2), (0, 0)), ((1, 1), (4, 4), (0, 0))])


# -- Captum and Keras references on a ResNet-18 file -------------------------------------------
@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    """(torch ResNet-18 in float64 with random BatchNorm statistics, the path of its torch.save'd
    state dict, minicnn's network loaded from it in float64, x (2, 3, 64, 64) float64)."""
    from resnet_torch import saved_resnet18

    return saved_resnet18(tmp_path_factory.mktemp("r"), seed=2, x_seed=5)


def test_captum_graph_mirror_equals_the_original_model(resnet_file):
    """The mirror verify --against captum builds runs the nodes by their inputs: its scores equal
    the torch ResNet's (BatchNorm folded into float32 weights at load: 1e-6)."""
    torch = oracle("torch")
    from minicnn.tools.captum_reference import torch_mirror

    model, _, net, x = resnet_file
    mirror = torch_mirror(net)
    with torch.no_grad():
        ours, theirs = mirror(torch.from_numpy(x)).numpy(), model(torch.from_numpy(x)).numpy()
    assert_close(ours, theirs, 1e-6, "mirror scores")
    assert mirror[net.index("layer4.1")] is not None  # Grad-CAM's module is found by position


@pytest.mark.parametrize("method", ["saliency", "gradient", "deconvnet", "guided", "grad_cam"])
def test_verify_against_captum_on_a_resnet(resnet_file, method):
    """minicnn's maps of the ResNet-18 equal Captum's on the graph mirror (float64, 1e-6)."""
    oracle("captum")
    from minicnn.tools.captum_reference import captum_map

    _, _, net, x = resnet_file
    targets = [3, 7]
    result = mc.verify(net, x, captum_map(net, x, method, targets), method, targets, tol=1e-6)
    assert result.agree, result.lines()
    assert result.rank_correlation > 0.99999


def test_keras_mirror_of_a_graph():
    """verify --against keras builds Keras's functional graph (Add of the branches): its gradient
    equals minicnn's on the small ResNet (float32 in Keras: 1e-4)."""
    oracle("keras")
    from minicnn.tools.keras_reference import keras_map

    net = small_resnet(channels=3).astype(np.float32)
    x = np.random.default_rng(2).standard_normal((2, 3, 32, 32)).astype(np.float32)
    for method in ("gradient", "grad_cam"):
        result = mc.verify(net, x, keras_map(net, x, method, [1, 4]), method, [1, 4], tol=1e-4)
        assert result.agree, result.lines()


# -- the equivalence table on a graph -----------------------------------------------------------
def test_equivalence_table_on_a_resnet(resnet_file):
    """Every node has a row (Add rows included); conv, pool, dense and add rows agree to float64
    precision, ReLU rows differ (Simonyan et al. 2013, sec. 4); the whole-network DeconvNet and
    gradient signals equal Captum's Deconvolution and Saliency on the graph mirror."""
    oracle("captum")
    from minicnn.tools.captum_reference import captum_map

    _, _, net, x = resnet_file
    res = mc.equivalence(net, x, [3, 7], progress=False)
    assert [r.name for r in res.rows] == [layer.name for layer in reversed(net.layers)]
    kinds = {r.kind for r in res.rows}
    assert {"Conv2D", "MaxPool2D", "Dense", "Add", "GlobalAvgPool2D", "ReLU"} <= kinds
    for r in res.rows:
        if r.kind == "ReLU":
            continue
        assert r.rel_diff < 1e-12 and r.frac_differ == 0, r
    assert max(r.rel_diff for r in res.rows if r.kind == "ReLU") > 0.1
    add = next(r for r in res.rows if r.kind == "Add")
    assert (add.deconvnet, add.gradient) == ("R to each X_i", "dX to each X_i")
    for mode in ("deconvnet", "gradient"):
        ref = captum_map(net, x, mode, [3, 7])
        assert_close(res.signals[mode], ref, 1e-6, f"whole-network {mode}")


def test_equivalence_command_on_a_resnet_file(resnet_file, tmp_path):
    """The Done-when of the command: ``minicnn equivalence --weights <resnet .pth> --image <photo>``
    prints conv, pool, dense and add rows and exits 0."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    _, path, _, _ = resnet_file
    photo = tmp_path / "photo.png"
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(photo)
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo), TQDM_DISABLE="1")
    cmd = [sys.executable, "-m", "minicnn.cli.main", "equivalence", "--weights", str(path)]
    cmd += ["--image", str(photo), "--out", str(tmp_path / "out")]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines() if line[:1].isalpha()}
    for name, kind in [("layer4.1.conv2", "Conv2D"), ("maxpool", "MaxPool2D"), ("fc", "Dense"),
                       ("layer4.1.add", "Add"), ("layer2.0.downsample.0", "Conv2D")]:  # fmt: skip
        assert rows.get(name) == kind, (name, r.stdout[-3000:])


# -- CAM and Grad-CAM on a ResNet ---------------------------------------------------------------
def test_gradcam_default_is_the_last_block_output_and_equals_cam(resnet_file):
    """Grad-CAM's default layer on ResNet-18 is the last block's output ``layer4.1`` (torchvision's
    model.layer4[1]); there, before GAP -> fc, Grad-CAM = ReLU(CAM) / (h w) (Selvaraju et al. 2017,
    sec. 3.1), and CAM equals sum_k w_ck f_k computed from the torch ResNet's own layer4 output."""
    torch = oracle("torch")
    from minicnn.tools.cam import gradcam_layer, main_path

    model, _, net, x = resnet_file
    assert gradcam_layer(net, None, x.shape[1:]) == "layer4.1"
    path = [net.layers[i].name for i in main_path(net)]
    assert "layer4.1" in path and "layer1.0" in path and "layer4.1.conv2" not in path
    assert "layer2.0.downsample.0" not in path and "maxpool" in path
    targets = [3, 7]
    ours = mc.grad_cam(net, x, targets, upsample=False)
    cam = mc.cam(net, x, targets, upsample=False)
    h, w = cam.shape[1:]
    assert_close(ours, np.maximum(cam, 0) / (h * w), 1e-10, "Grad-CAM = ReLU(CAM) / hw")
    taps = {}
    hook = model.layer4[-1].register_forward_hook(lambda m, i, o: taps.update(f=o.detach().numpy()))
    with torch.no_grad():
        model(torch.from_numpy(x))
    hook.remove()
    theirs = np.einsum("nk,nkhw->nhw", model.fc.weight.detach().numpy()[targets], taps["f"])
    assert_close(cam, theirs, 1e-6, "CAM from torch's layer4 output")


def test_gradcam_rectified_conv_is_its_reader_not_the_next_in_order():
    """A conv's rectified output is the ReLU that reads it: in a graph the node run next may be a
    ReLU of another branch, which must not be taken."""
    from minicnn.tools.cam import gradcam_layer

    net = branch_then_shortcut()
    assert [layer.name for layer in net.layers][2:5] == ["a", "shortcut", "a.relu"]
    assert gradcam_layer(net, "shortcut", (1, 8, 8)) == "shortcut"
    assert gradcam_layer(net, "a", (1, 8, 8)) == "a.relu"
    assert gradcam_layer(net, None, (1, 8, 8)) == "add"  # the block's output, not a branch's ReLU


# -- occlusion ----------------------------------------------------------------------------------
def naive_occlusion_scores(net, image, target, size, stride, value):
    """The target's score under each occluder position, one full forward pass per position."""
    h, w = image.shape[1:]
    ys, xs = range(0, h - size + 1, stride), range(0, w - size + 1, stride)
    scores = np.empty((len(ys), len(xs)))
    for a, y in enumerate(ys):
        for b, x in enumerate(xs):
            occluded = image.copy()
            occluded[:, y : y + size, x : x + size] = value
            scores[a, b] = net.forward(occluded[None])[0, target]
    return scores


def test_occlusion_on_a_graph_is_incremental_and_equals_the_naive_loop():
    """On a graph occlusion runs incrementally (every branch its own region, no warning) and its
    scores equal a naive loop of full passes (float64, 1e-12); incremental=False gives the same."""
    import warnings

    net = small_resnet(channels=3)
    image = np.random.default_rng(3).standard_normal((3, 24, 24))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = mc.occlusion(net, image, 2, size=6, stride=3, fill="zero", progress=False)
    ref = naive_occlusion_scores(net, image, 2, 6, 3, 0.0)
    assert res.score.shape == (1, *ref.shape)
    assert_close(res.score[0], ref, 1e-12, "graph occlusion scores")
    full = mc.occlusion(net, image, 2, size=6, stride=3, fill="zero", progress=False, incremental=False)
    assert_close(res.attribution, full.attribution, 1e-12, "incremental and full attribution maps")


def test_incremental_occlusion_through_a_padded_max_pool_in_a_chain():
    """A padded max-pool (-inf padding) in a chain: incremental inference runs that node on whole
    maps and cuts its changed rectangle back out instead of stopping with an error; the scores
    equal the naive loop (float64, 1e-10)."""
    net = mc.Sequential(
        [
            mc.Conv2D(3, 4, 3, padding=1),
            mc.ReLU(),
            mc.Conv2D(4, 4, 3, padding=1),
            mc.ReLU(),
            mc.MaxPool2D(3, stride=2, padding=1),
            mc.Conv2D(4, 4, 3, padding=1),
            mc.ReLU(),
            mc.Flatten(),
            mc.Dense(4 * 12 * 12, 5),
        ],
        seed=1,
        dtype=np.float64,
    )
    image = np.random.default_rng(4).standard_normal((3, 24, 24))
    res = mc.occlusion(net, image, 4, size=4, stride=2, fill="zero", progress=False, incremental=True)
    assert_close(res.score[0], naive_occlusion_scores(net, image, 4, 4, 2, 0.0), 1e-10, "padded pool")


def test_maximize_a_relu_in_a_graph_climbs_its_own_input():
    """For a ReLU layer the ascent climbs the ReLU's input (tools/maximize.py): in a graph that is
    the node the ReLU reads, not the node run just before it (here the shortcut)."""
    net = branch_then_shortcut(dtype=np.float64)
    res = mc.maximize(net, "a.relu", 2, starts=2, steps=1, seed=0, progress=False)
    start = res.info["start"]
    expected = net.forward(start, stop="a")[:, 2].mean(axis=(1, 2))
    assert_close(np.asarray(res.info["objective"])[:, 0], expected, 1e-12, "objective at the start")
