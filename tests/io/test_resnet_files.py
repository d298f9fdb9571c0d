"""torchvision ResNet state dicts, read without torch, against torch itself; ResNet gradients.

The reference models are torchvision's ResNet-18 and ResNet-50 written in plain torch.nn with
torchvision's module names (tests/resnet_torch.py: torchvision is not installable here), with seeded
He-normal weights and random BatchNorm statistics, saved by torch.save as a torchvision user would.
"""

from __future__ import annotations

import numpy as np
import pytest
from resnet_torch import torch_resnet, with_rule
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError


def saved(tmp_path, name="resnet18", edit=None, classes=1000):
    """(torch model, path of its torch.save'd state dict); ``edit`` changes the dict first."""
    torch = oracle("torch")
    model = torch_resnet(name, classes=classes)
    state = model.state_dict()
    if edit is not None:
        edit(state)
    path = tmp_path / f"{name}.pth"
    torch.save(state, path)
    return model, path


def torch_keys(model) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_zoo_names_and_shapes_are_torchvisions(name):
    """mc.resnetNN's parameters, named layer.key, are torchvision's state dict keys with their shapes
    (the convolutions' zero biases aside: torchvision's convolutions have none)."""
    net = getattr(mc, name)(seed=0)
    ours = {
        f"{layer.name}.{key}": tuple(value.shape)
        for layer, key, value in net.parameters()
        if not (layer.is_convolution and key == "bias")
    }
    assert ours == torch_keys(torch_resnet(name))
    assert all(not layer.bias.any() for layer in net.layers if layer.is_convolution)
    assert net.shapes()[-1] == (1000,)


@pytest.mark.parametrize("name, batch", [("resnet18", 2), ("resnet50", 1)])
def test_scores_equal_torch_at_224(tmp_path, name, batch):
    """Class scores within 1e-4 of the largest (float32), and the output of the last block
    (``layer4.1`` in ResNet-18: torchvision's model.layer4[1]) equal to torch's there."""
    torch = oracle("torch")
    model, path = saved(tmp_path, name)
    net = mc.load(path)
    assert net.meta["architecture"] == name and net.meta["batchnorm_folded"] is True
    assert not net.is_chain and len(net.meta["class_names"]) == 1000
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    taps = {}
    model.layer4[-1].register_forward_hook(lambda m, i, o: taps.update(layer4=o.clone()))
    with torch.no_grad():
        theirs = model(torch.tensor(x)).numpy()
    rec = net.run(x)
    assert_close(rec.output(), theirs, rtol=1e-4, what=f"{name} scores")
    assert_close(rec.output("layer4.1" if name == "resnet18" else "layer4.2"), taps["layer4"].numpy(),
                 rtol=1e-4, what="layer4 output")  # fmt: skip


def test_wide_resnet50_2_is_told_from_resnet50_and_equals_torch(tmp_path):
    """A wide ResNet-50-2 state dict (torchvision's keys; inner convolutions twice as wide) is read
    as wide_resnet50_2, not refused or taken for a ResNet-50, and gives torch's scores (float32,
    1e-4 of the largest; 64x64 keeps the test short: the graph is the same at any size)."""
    torch = oracle("torch")
    model, path = saved(tmp_path, "wide_resnet50_2", classes=10)
    net = mc.load(path)
    assert net.meta["architecture"] == "wide_resnet50_2"
    layers = {layer.name: layer for layer in net.layers}
    assert layers["layer1.0.conv1"].param_shapes()["weight"] == (128, 64, 1, 1)
    assert layers["layer1.0.conv3"].param_shapes()["weight"] == (256, 128, 1, 1)
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        theirs = model(torch.tensor(x)).numpy()
    assert_close(net.run(x).output(), theirs, rtol=1e-4, what="wide_resnet50_2 scores")
    ours = {
        f"{layer.name}.{key}": tuple(value.shape)
        for layer, key, value in mc.wide_resnet50_2(seed=0, num_classes=10).parameters()
        if not (layer.is_convolution and key == "bias")
    }
    assert ours == torch_keys(model)


def test_safetensors_resnet_equals_the_pth(tmp_path):
    """The same ResNet-18 state dict as safetensors: the same graph and the same scores as torch."""
    torch = oracle("torch")
    st = pytest.importorskip("safetensors.torch")
    model, path = saved(tmp_path, classes=10)
    st.save_file(model.state_dict(), tmp_path / "r.safetensors")
    net = mc.load(tmp_path / "r.safetensors")
    assert net.meta["source"] == "safetensors" and net.names == mc.load(path).names
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 96)).astype(np.float32)
    with torch.no_grad():
        theirs = model(torch.tensor(x)).numpy()
    assert_close(net.run(x).output(), theirs, rtol=1e-4, what="safetensors ResNet-18 scores")


PAPER = {"resnet34": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_every_depth_is_told_apart_by_its_keys(name):
    """A state dict with a ResNet-34/101/152's keys and shapes (torchvision's, as mc.zoo names them)
    builds that architecture: blocks per stage and Bottleneck's conv3 name it."""
    from minicnn.io.torchvision_resnet import build_resnet
    from minicnn.zoo import resnet_nodes

    nodes, _ = resnet_nodes(name)
    shapes = {}
    for layer in (n[0] if isinstance(n, tuple) else n for n in nodes):
        for key, shape in layer.param_shapes().items():
            if not (layer.is_convolution and key == "bias"):
                shapes[f"{layer.name}.{key}"] = shape
    shapes["bn1.num_batches_tracked"] = ()
    net = build_resnet(shapes, lambda key: np.ones(shapes[key], np.float32), "test")
    assert net.meta["architecture"] == name
    stages = tuple(
        len({n.split(".")[1] for n in net.names if n.startswith(f"layer{s}.")}) for s in range(1, 5)
    )
    assert stages == PAPER[name]  # He et al. 2016, table 1
    assert ("layer1.0.conv3" in net.names) == (name != "resnet34")


def float64_pair(seed=0):
    """mc.resnet18 in float64 with random BatchNorm statistics (BatchNorm layers kept, not folded)
    and the torch model holding the same numbers, in float64."""
    torch = oracle("torch")
    net = mc.resnet18(seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if "running_var" in layer.params:
            c = layer.channels
            layer.weight, layer.bias = rng.uniform(0.5, 1.5, c), rng.uniform(-0.3, 0.3, c)
            layer.running_mean, layer.running_var = rng.normal(0, 0.5, c), rng.uniform(0.3, 3.0, c)
        elif layer.is_linear:
            layer.bias = rng.uniform(-0.1, 0.1, layer.bias.shape)
    model = torch_resnet("resnet18").double()
    state = {
        f"{layer.name}.{key}": torch.from_numpy(value)
        for layer, key, value in net.parameters()
        if not (layer.is_convolution and key == "bias")
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    return net, model


@pytest.mark.parametrize("size", [64, 224])
def test_resnet18_saliency_equals_torch_autograd(size):
    """dS_c/dx through every residual block (the sum rule at each Add), BatchNorm and the padded
    stem pool: mc.saliency's signed map against torch autograd, float64, 1e-6 of the largest."""
    torch = oracle("torch")
    net, model = float64_pair()
    x = np.random.default_rng(1).standard_normal((1, 3, size, size))
    targets = [7]
    ours = mc.saliency(net, x, target=targets, signed=True)
    tx = torch.tensor(x, requires_grad=True)
    model(tx)[0, 7].backward()
    assert_close(ours, tx.grad.numpy(), rtol=1e-6, what=f"ResNet-18 saliency at {size}")


@pytest.mark.parametrize("mode", ["deconvnet", "guided"])
def test_resnet18_rules_equal_torch(mode):
    """DeconvNet and guided backpropagation through ResNet-18 (float64, 64 x 64): the engine's rule,
    and for DeconvNet also the independent reverse network (mc.deconvnet), against torch's chain
    rule with the rule's ReLU; 1e-6 of the largest."""
    torch = oracle("torch")
    net, model = float64_pair()
    with_rule(model, mode)
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64))
    dy = np.zeros((2, 1000))
    dy[0, 7], dy[1, 42] = 1.0, 1.0
    tx = torch.tensor(x, requires_grad=True)
    model(tx).backward(torch.tensor(dy))
    rec = net.run(x)
    assert_close(rec.backward(dy, mode=mode), tx.grad.numpy(), rtol=1e-6, what=f"ResNet-18 {mode}")
    if mode == "deconvnet":
        ours = mc.deconvnet(net, x, target=[7, 42], record=rec)
        assert_close(ours, tx.grad.numpy(), rtol=1e-6, what="ResNet-18 independent DeconvNet")


def test_a_graph_is_saved_as_a_graph(tmp_path):
    # the native format stores each node's inputs (tests/io/test_native_graph.py checks the scores)
    net = mc.resnet18(seed=0)
    back = mc.load(mc.save(net, tmp_path / "r.h5"))
    assert isinstance(back, mc.Graph) and back.inputs == net.inputs


def _drop(key):
    return lambda state: state.pop(key)


def _reshape(key):
    return lambda state: state.__setitem__(key, state[key][:-1])


def _add(key):
    return lambda state: state.__setitem__(key, state["fc.bias"].clone())


def _drop_block(state):
    for key in [k for k in state if k.startswith("layer4.1.")]:
        state.pop(key)


BROKEN = [
    (
        _drop("layer2.0.downsample.1.running_var"),
        r"missing layer2\.0\.downsample\.1\.running_var \(expected shape \(128,\)\) in a resnet18 state",
    ),
    (
        _reshape("layer3.1.bn2.weight"),
        r"layer3\.1\.bn2\.weight should have shape \(256,\) in a resnet18, found \(255,\)$",
    ),
    (
        _add("layer1.0.bn3.bias"),
        r"unexpected key 'layer1\.0\.bn3\.bias' \(shape \(10,\)\); expected torchvision ResNet keys",
    ),
    (
        _drop_block,
        r"a ResNet with BasicBlocks per stage \(2, 2, 2, 1\): expected one of resnet18 \(2, 2, 2, 2\), ",
    ),
]


@pytest.mark.parametrize("edit, message", BROKEN)
def test_broken_state_dicts_are_one_line(tmp_path, edit, message):
    _, path = saved(tmp_path, edit=edit, classes=10)
    with pytest.raises(MinicnnError, match=message) as info:
        mc.load(path)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{path}: ")
