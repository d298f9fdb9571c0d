"""ONNX graphs: torch.onnx exports score as torch does; a hand-made graph of the operators torch's
exporter does not write (BatchNormalization, padded AveragePool both ways, GlobalAveragePool,
Reshape, MatMul + Add, Dropout, Softmax) scores as onnxruntime does."""

from __future__ import annotations

import numpy as np
import pytest
import torch_models as tm
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError


@pytest.mark.parametrize(
    "build, size",
    [
        (lambda: tm.torchvision_vgg(bn=True), 48),
        (lambda: tm.torchvision_vgg(tm.VGG16_NARROW, bn=True, hidden=64, classes=1000, side=7), 224),
        (lambda: tm.timm_vgg(), 224),
    ],
    ids=["small_bn", "vgg16_bn_narrow", "timm_vgg16_narrow"],
)
def test_torch_export_scores_equal_torch(tmp_path, build, size):
    oracle("torch")
    model = build()
    net, fmt = mc.load(tm.save_onnx(model, tmp_path / "m.onnx", size), with_format=True)
    assert fmt == "onnx" and net.meta["input_shape"] == [3, size, size]
    x = mc.preprocess(tm.images(2, size), "torch")
    assert_close(net.forward(x), tm.scores(model, x), rtol=1e-4)


def _graph(onnx, rng, ops=None, count_include_pad=0):
    """Conv -> BatchNormalization -> Relu -> AveragePool(3, 2, pad 1) -> Conv -> Relu ->
    GlobalAveragePool -> Reshape(N, -1) -> MatMul -> Add -> Dropout -> Softmax, on (1, 3, 12, 12)."""
    from onnx import TensorProto, helper, numpy_helper

    def init(name, a):
        return numpy_helper.from_array(np.asarray(a, np.float32), name)

    inits = [
        init("w1", rng.standard_normal((6, 3, 3, 3)) * 0.4),
        init("b1", rng.uniform(-0.1, 0.1, 6)),
        init("gamma", rng.uniform(0.5, 1.5, 6)),
        init("beta", rng.uniform(-0.3, 0.3, 6)),
        init("mean", rng.normal(0, 0.5, 6)),
        init("var", rng.uniform(0.3, 3.0, 6)),
        init("w2", rng.standard_normal((8, 6, 3, 3)) * 0.3),
        init("b2", rng.uniform(-0.1, 0.1, 8)),
        numpy_helper.from_array(np.array([1, -1], np.int64), "shape"),
        init("wm", rng.standard_normal((8, 5))),
        init("bm", rng.uniform(-0.5, 0.5, 5)),
    ]
    N = helper.make_node
    nodes = ops or [
        N("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        N("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["n1"], name="bn1", epsilon=1e-3),
        N("Relu", ["n1"], ["r1"], name="relu1"),
        N("AveragePool", ["r1"], ["p1"], name="pool1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
          count_include_pad=count_include_pad),
        N("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        N("Relu", ["c2"], ["r2"], name="relu2"),
        N("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        N("Reshape", ["g", "shape"], ["f"], name="reshape"),
        N("MatMul", ["f", "wm"], ["m"], name="fc"),
        N("Add", ["m", "bm"], ["a"], name="fc_bias"),
        N("Dropout", ["a"], ["d"], name="drop"),
        N("Softmax", ["d"], ["y"], name="softmax", axis=1),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, [1, 5])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_hand_made_graph_equals_onnxruntime(tmp_path, count_include_pad):
    onnx = oracle("onnx")
    ort = oracle("onnxruntime")
    model = _graph(onnx, np.random.default_rng(0), count_include_pad=count_include_pad)
    onnx.checker.check_model(model)
    onnx.save(model, tmp_path / "g.onnx")
    net = mc.load(tmp_path / "g.onnx")
    assert net.meta["final_activation"] == "softmax"
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    probs = sess.run(None, {"x": x})[0]
    scores = net.forward(x)  # minicnn stops before the softmax
    assert_close(mc.layers.softmax.softmax(scores.astype(np.float64), axis=1), probs, rtol=1e-5)
    # the padded average pool's divisor is visible: the other convention gives other probabilities
    other = mc.load(tmp_path / "g.onnx")
    pool = next(layer for layer in other.layers if isinstance(layer, mc.AvgPool2D))
    pool.count_include_pad = not pool.count_include_pad
    wrong = mc.layers.softmax.softmax(other.forward(x).astype(np.float64), axis=1)
    assert np.abs(wrong - probs).max() > 1e-3


def test_unsupported_op_names_op_and_node(tmp_path):
    onnx = oracle("onnx")
    from onnx import helper

    model = _graph(onnx, np.random.default_rng(0))
    nodes = list(model.graph.node)
    nodes[2] = helper.make_node("Sigmoid", ["n1"], ["r1"], name="act1")
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, tmp_path / "g.onnx")
    with pytest.raises(MinicnnError, match=r"node 'act1' \(Sigmoid\): operator Sigmoid is not supported"):
        mc.load(tmp_path / "g.onnx")


def test_truncated_onnx_is_one_line(tmp_path):
    onnx = oracle("onnx")
    onnx.save(_graph(onnx, np.random.default_rng(0)), tmp_path / "g.onnx")
    data = (tmp_path / "g.onnx").read_bytes()
    (tmp_path / "g.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(MinicnnError) as err:
        mc.load(tmp_path / "g.onnx")
    assert "\n" not in str(err.value)


def test_external_data_is_refused(tmp_path):
    onnx = oracle("onnx")
    model = _graph(onnx, np.random.default_rng(0))
    onnx.save(model, tmp_path / "g.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)  # fmt: skip
    with pytest.raises(MinicnnError, match="external file; refused"):
        mc.load(tmp_path / "g.onnx")


def test_declared_input_size_is_bounded(tmp_path):
    """A graph declaring a 100000 x 100000 input would make --image resize every picture to 120 GB:
    its metadata is checked as an HDF5 file's (one line naming the limit), before any image."""
    onnx = oracle("onnx")
    from onnx import TensorProto, helper

    model = _graph(onnx, np.random.default_rng(0))
    model.graph.input[0].CopyFrom(
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 100000, 100000])
    )
    onnx.save(model, tmp_path / "huge.onnx")
    with pytest.raises(MinicnnError, match=r"input_shape \[3, 100000, 100000\] out of range") as err:
        mc.load(tmp_path / "huge.onnx")
    assert "\n" not in str(err.value) and "huge.onnx" in str(err.value)
