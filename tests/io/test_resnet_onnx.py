"""ONNX graphs that branch: a torch ResNet-18 exported by torch.onnx (residual Adds, the padded stem
max-pool) loads as a minicnn Graph that scores as torch does, and its saliency equals torch autograd
in float64; hand-made graphs with a cycle, a dangling input or an Add of different shapes are
refused in one line naming the node."""

from __future__ import annotations

import numpy as np
import pytest
import torch_models as tm
from resnet_torch import torch_resnet
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError

SIZE, CLASSES = 64, 10


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A torchvision-layout ResNet-18 (random BatchNorm statistics, eval mode, 10 classes) and its
    torch.onnx export (TorchScript exporter) at 64 x 64."""
    oracle("torch")
    oracle("onnx")
    model = torch_resnet("resnet18", classes=CLASSES, seed=3)
    path = tm.save_onnx(model, tmp_path_factory.mktemp("onnx") / "resnet18.onnx", SIZE)
    return model, path


def test_resnet18_export_scores_equal_torch(exported):
    model, path = exported
    net, fmt = mc.load(path, with_format=True)
    assert fmt == "onnx" and not net.is_chain
    assert net.meta["input_shape"] == [3, SIZE, SIZE]
    kinds = [layer.kind for layer in net.layers]
    assert kinds.count("Add") == 8 and kinds.count("Conv2D") == 20  # 8 blocks, 17 + 3 shortcut convs
    adds = [layer.name for layer in net.layers if layer.kind == "Add"]
    assert all(len(net.inputs[name]) == 2 for name in adds)
    x = mc.preprocess(tm.images(2, SIZE), "torch")
    ours, theirs = net.forward(x), tm.scores(model, x)
    assert ours.shape == (2, CLASSES)
    assert_close(ours, theirs, rtol=1e-4, what="ResNet-18 ONNX scores")


@pytest.mark.parametrize("name, folding", [("resnet18", False), ("resnet50", True)])
def test_batchnorm_nodes_and_bottlenecks_equal_torch(tmp_path, name, folding):
    """Without the exporter's constant folding the file keeps every BatchNormalization node (the
    loader folds each into its Conv); ResNet-50's bottleneck blocks (1x1, 3x3, 1x1, 4x wider)."""
    torch = oracle("torch")
    onnx = oracle("onnx")
    import warnings

    model = torch_resnet(name, classes=CLASSES, seed=4)
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (torch.zeros(1, 3, SIZE, SIZE),), str(path), dynamo=False, do_constant_folding=folding
        )
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("BatchNormalization") == (0 if folding else 20)
    net = mc.load(path)
    assert [layer.kind for layer in net.layers].count("Add") == (16 if name == "resnet50" else 8)
    x = mc.preprocess(tm.images(1, SIZE, seed=5), "torch")
    assert_close(net.forward(x), tm.scores(model, x), rtol=1e-4, what=f"{name} ONNX scores")


def _float64_reference(model, path):
    """The torch ResNet in float64 holding the exported (BatchNorm-folded) weights, read from the
    ONNX file with the onnx package: each Conv / Gemm node's initializers, in the order the exporter
    wrote them, go to the torch convolutions / fc in the order they run; every BatchNorm becomes
    the identity (running_var = 1 - eps, so x / sqrt(var + eps) = x)."""
    torch = oracle("torch")
    onnx = oracle("onnx")
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    stored = [
        (inits[n.input[1]], inits[n.input[2]] if len(n.input) > 2 else None)
        for n in graph.node
        if n.op_type in ("Conv", "Gemm")
    ]
    ref = torch_resnet("resnet18", classes=CLASSES, seed=3).double()
    order = []
    hooks = [
        m.register_forward_pre_hook(lambda m, _: order.append(m))
        for m in ref.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    with torch.no_grad():
        ref(torch.zeros(1, 3, SIZE, SIZE, dtype=torch.float64))
    for h in hooks:
        h.remove()
    assert len(order) == len(stored) == 21
    with torch.no_grad():
        for m, (w, b) in zip(order, stored):
            assert tuple(m.weight.shape) == w.shape
            m.weight.copy_(torch.from_numpy(w.astype(np.float64)))
            m.bias = torch.nn.Parameter(torch.from_numpy(b.astype(np.float64)))
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.fill_(1.0), m.bias.fill_(0.0), m.running_mean.fill_(0.0)
                m.running_var.fill_(1.0 - m.eps)
    return ref.eval()


def test_resnet18_export_saliency_equals_torch_autograd(exported):
    """dS_c/dx through the loaded graph (the sum rule at every Add, the padded stem pool) in
    float64 against torch autograd on the torch architecture holding the file's weights."""
    torch = oracle("torch")
    model, path = exported
    net = mc.load(path).astype("float64")
    ref = _float64_reference(model, path)
    x = np.random.default_rng(1).standard_normal((1, 3, SIZE, SIZE))
    tx = torch.tensor(x, requires_grad=True)
    out = ref(tx)
    assert_close(net.forward(x), out.detach().numpy(), rtol=1e-10, what="float64 scores")
    out[0, 7].backward()
    ours = mc.saliency(net, x, target=[7], signed=True)
    assert_close(ours, tx.grad.numpy(), rtol=1e-6, what="ResNet-18 ONNX saliency")


def _residual(path, edit):
    """Conv(3->4, 3x3, pad 1) -> Relu -> Conv -> Add(relu, conv) -> Relu on (1, 3, 8, 8), then
    ``edit`` (a dict of replacements: node name -> (op, inputs, attributes)) applied."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
        for n, s in (("w1", (4, 3, 3, 3)), ("w2", (4, 4, 3, 3)))
    ] + [numpy_helper.from_array(np.ones(4, np.float32), n) for n in ("g", "beta", "mean", "var")]
    nodes = {
        "c1": ("Conv", ["x", "w1"], "a", {"pads": [1, 1, 1, 1]}),
        "r1": ("Relu", ["a"], "b", {}),
        "c2": ("Conv", ["b", "w2"], "c", {"pads": [1, 1, 1, 1]}),
        "sum": ("Add", ["b", "c"], "d", {}),
        "r2": ("Relu", ["d"], "y", {}),
    }
    nodes.update(edit)
    made = [helper.make_node(op, i, [o], name=n, **a) for n, (op, i, o, a) in nodes.items()]
    graph = helper.make_graph(
        made,
        "residual",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        inits,
    )
    with open(path, "wb") as f:
        f.write(helper.make_model(graph).SerializeToString())
    return path


def test_a_hand_made_residual_graph_equals_onnxruntime(tmp_path):
    ort = oracle("onnxruntime")
    path = _residual(tmp_path / "ok.onnx", {})
    net = mc.load(path)
    assert net.inputs["sum"] == ("r1", "c2") and net.inputs["c2"] == ("r1",)
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)
    (want,) = ort.InferenceSession(str(path)).run(None, {"x": x})
    assert_close(net.forward(x), want, rtol=1e-5)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            {"r1": ("Relu", ["d"], "b", {})},  # r1 reads the sum, which reads r1's output
            r"node '(r1|c2|sum|r2)' \(\w+\): the graph has a cycle through this node",
        ),
        (
            {"sum": ("Add", ["b", "ghost"], "d", {})},
            r"node 'sum' \(Add\): input 'ghost' is not produced by any node, initializer",
        ),
        (
            {"c2": ("Conv", ["b", "w2"], "c", {"pads": [1, 1, 1, 1], "strides": [2, 2]})},
            r"node 'sum' \(Add\): inputs of shapes \[4, 8, 8\] and \[4, 4, 4\] do not add",
        ),
        (  # folding would change the conv output that the sum also reads
            {
                "bn": ("BatchNormalization", ["a", "g", "beta", "mean", "var"], "a2", {}),
                "r1": ("Relu", ["a2"], "b", {}),
                "sum": ("Add", ["a", "c"], "d", {}),
            },
            r"node 'bn' \(BatchNormalization\): BatchNormalization is supported right after a Conv that "
            "nothing else reads",
        ),
    ],
    ids=["cycle", "dangling", "shapes", "shared_conv"],
)
def test_broken_graphs_are_refused_in_one_line(tmp_path, edit, message):
    path = _residual(tmp_path / "bad.onnx", edit)
    with pytest.raises(MinicnnError, match=message) as err:
        mc.load(path)
    assert "\n" not in str(err.value)
