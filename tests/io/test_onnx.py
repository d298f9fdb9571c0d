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
    with pytest.raises(MinicnnError, match="in an external file 'weights.bin'; refused"):
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


def _external(numpy_helper, values, name, location):
    """A TensorProto whose bytes are ``location`` (relative to the model, as ONNX writes them)."""
    from onnx import TensorProto, external_data_helper

    tensor = numpy_helper.from_array(np.asarray(values, np.float32), name)
    external_data_helper.set_external_data(tensor, location=location)
    tensor.data_location = TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    return tensor


def _plant(place, onnx, model):
    """Put a tensor naming external data at ``place`` of ``model`` (a valid 5-class graph)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    if place == "initializer":  # the fc bias
        i = [t.name for t in graph.initializer].index("bm")
        graph.initializer[i].CopyFrom(_external(numpy_helper, np.zeros(5), "bm", "secret.bin"))
    elif place == "constant":  # the fc bias as a Constant node: read by the loader itself
        i = [t.name for t in graph.initializer].index("bm")
        del graph.initializer[i]
        value = _external(numpy_helper, np.zeros(5), "bm_value", "sub/secret.bin")
        graph.node.insert(0, helper.make_node("Constant", [], ["bm"], name="bias", value=value))
    elif place == "tensor-attribute":  # an attribute no operator reads
        graph.node[2].attribute.append(
            helper.make_attribute("note", _external(numpy_helper, np.zeros(5), "t", "secret.bin"))
        )
    elif place == "tensors-attribute":
        tensors = [_external(numpy_helper, np.zeros(5), "t", "secret.bin")]
        graph.node[2].attribute.append(helper.make_attribute("notes", tensors))
    elif place in ("graph-attribute", "nested-subgraph"):
        inner = helper.make_graph(
            [], "inner", [], [], [_external(numpy_helper, np.zeros(5), "t", "secret.bin")]
        )
        if place == "nested-subgraph":  # a Constant inside a graph inside a graph's node
            const = helper.make_node(
                "Constant", [], ["c"], value=_external(numpy_helper, np.zeros(5), "c", "sub/secret.bin")
            )
            middle = helper.make_node("Identity", ["c"], ["d"], name="mid", body=helper.make_graph(
                [const], "deeper", [], []))  # fmt: skip
            inner = helper.make_graph([middle], "inner", [], [])
        graph.node[2].attribute.append(helper.make_attribute("body", inner))
    elif place == "sparse-initializer":
        values = _external(numpy_helper, np.zeros(5), "s", "secret.bin")
        indices = numpy_helper.from_array(np.arange(5, dtype=np.int64), "s_idx")
        graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [5]))
    elif place == "function":
        value = _external(numpy_helper, np.zeros(5), "f", "secret.bin")
        node = helper.make_node("Constant", [], ["y"], value=value)
        model.functions.append(helper.make_function("local", "F", [], ["y"], [node], model.opset_import))
    else:
        raise AssertionError(place)


PLACES = (
    "initializer",
    "constant",
    "tensor-attribute",
    "tensors-attribute",
    "graph-attribute",
    "nested-subgraph",
    "sparse-initializer",
    "function",
)


@pytest.mark.parametrize("place", PLACES)
def test_external_data_anywhere_is_refused(tmp_path, monkeypatch, place):
    """A tensor naming external data is refused wherever it sits, before anything is converted;
    the planted secret (20 bytes = 5 float32, in the current directory) never reaches the weights."""
    onnx = oracle("onnx")
    from onnx import numpy_helper

    secret = np.array([7.0, 1e3, -5.0, 42.0, 3.5], np.float32)
    work = tmp_path / "cwd"
    (work / "sub").mkdir(parents=True)
    for name in ("secret.bin", "sub/secret.bin"):
        (work / name).write_bytes(secret.tobytes())
    monkeypatch.chdir(work)
    model = _graph(onnx, np.random.default_rng(0))
    _plant(place, onnx, model)
    path = tmp_path / "model" / "g.onnx"
    path.parent.mkdir()
    onnx.save(model, path)
    if place == "constant":
        # the hostile case is real: ONNX's own conversion reads the secret from the current directory
        node = onnx.load(str(path), load_external_data=False).graph.node[0]
        np.testing.assert_array_equal(numpy_helper.to_array(node.attribute[0].t), secret)
    with pytest.raises(
        MinicnnError, match=r"is stored in an external file '(sub/)?secret.bin'; refused"
    ) as err:
        mc.load(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_names_from_the_file_are_quoted_and_bounded(tmp_path):
    """A node name holding a terminal escape code and 10,000 characters: the message escapes the code
    and keeps at most 60 characters of the name."""
    onnx = oracle("onnx")
    from onnx import helper

    model = _graph(onnx, np.random.default_rng(0))
    name = "\x1b]0;owned\x07" + "x" * 10_000
    model.graph.node[2].CopyFrom(helper.make_node("Sigmoid", ["n1"], ["r1"], name=name))
    onnx.save(model, tmp_path / "g.onnx")
    with pytest.raises(MinicnnError, match="operator Sigmoid is not supported") as err:
        mc.load(tmp_path / "g.onnx")
    text = str(err.value)
    assert "\x1b" not in text and "\x07" not in text and "\\x1b]0;owned\\x07" in text and len(text) < 400
