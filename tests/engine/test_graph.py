"""Graph networks: residual blocks run forward in topological order and backward with the sum rule.

References: torch autograd on the same graph built from each layer's torch module (float64), with
the ReLU's backward replaced for the DeconvNet and guided rules (Zeiler & Fergus 2013, sec. 2.1;
Springenberg et al. 2015, fig. 1) by a torch.autograd.Function, so that torch's own chain rule adds
the signals where branches meet; central finite differences (float64); the same layers as a
Sequential where the graph is a chain; and one-line errors for bad graphs.
"""

from __future__ import annotations

import numpy as np
import pytest
from resnet_torch import rule_relu
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.graph import INPUT
from minicnn.rules import MODES


def randomize(net, seed=0):
    """Random biases and BatchNorm statistics (not the identity), float64: no ReLU sits at its kink."""
    net.astype(np.float64)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        for key, value in layer.params.items():
            if key == "bias":
                setattr(layer, key, rng.uniform(-0.3, 0.3, value.shape))
            elif key == "running_var":
                setattr(layer, key, rng.uniform(0.3, 3.0, value.shape))
            elif key == "running_mean":
                setattr(layer, key, rng.normal(0, 0.5, value.shape))
            elif layer.kind == "BatchNorm2D" and key == "weight":
                setattr(layer, key, rng.uniform(0.5, 1.5, value.shape))
    return net


def residual(seed=0):
    """A stem (padded max-pool), a block with an identity shortcut and one with a projection."""
    nodes = [
        mc.Conv2D(3, 4, 3, padding=1, name="conv1"),
        mc.BatchNorm2D(4, name="bn1"),
        mc.ReLU(name="relu"),
        mc.MaxPool2D(3, stride=2, padding=1, name="maxpool"),
        mc.Conv2D(4, 4, 3, padding=1, name="b1.conv1"),
        mc.ReLU(name="b1.relu1"),
        mc.Conv2D(4, 4, 3, padding=1, name="b1.conv2"),
        (mc.Add(name="b1.add"), ("b1.conv2", "maxpool")),
        mc.ReLU(name="b1"),
        mc.Conv2D(4, 6, 3, stride=2, padding=1, name="b2.conv1"),
        mc.BatchNorm2D(6, name="b2.bn1"),
        mc.ReLU(name="b2.relu1"),
        mc.Conv2D(6, 6, 3, padding=1, name="b2.conv2"),
        (mc.Conv2D(4, 6, 1, stride=2, name="b2.downsample"), "b1"),
        (mc.Add(name="b2.add"), ("b2.conv2", "b2.downsample")),
        mc.ReLU(name="b2"),
        mc.GlobalAvgPool2D(name="avgpool"),
        mc.Dense(6, 5, name="fc"),
    ]
    return randomize(mc.Graph(nodes, seed=seed, meta={"input_shape": [3, 12, 12]}), seed)


def torch_graph(net, mode="gradient"):
    """The graph in torch (float64): each layer's torch module, the ReLU's backward by ``mode``."""
    torch = oracle("torch")

    rule = rule_relu(mode)
    modules = {}
    for layer in net.layers:
        m = layer.torch_module(torch.nn).double()
        with torch.no_grad():
            for key, value in layer.params.items():
                getattr(m, key).copy_(torch.from_numpy(np.asarray(value, np.float64)))
        modules[layer.name] = m.eval()

    def run(x):
        outputs = {INPUT: x}
        for layer in net.layers:
            given = [outputs[n] for n in net.inputs[layer.name]]
            if layer.is_rectifier:
                outputs[layer.name] = rule(given[0])
            else:
                outputs[layer.name] = modules[layer.name](*given)
        return outputs

    return run


def test_a_chain_graph_is_its_sequential():
    """A list of bare layers is a chain: the same outputs and input gradient as the Sequential."""
    make = lambda: [mc.Conv2D(3, 4, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2), mc.Flatten(), mc.Dense(36, 3)]  # noqa: E731
    seq = mc.Sequential(make(), seed=3, dtype=np.float64)
    graph = mc.Graph(make(), seed=3, dtype=np.float64)
    assert graph.names == seq.names and all(graph.inputs[b.name] == (a.name,) for a, b in
                                            zip(seq.layers, graph.layers[1:]))  # fmt: skip
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    dy = np.random.default_rng(1).standard_normal((2, 3))
    for mode in MODES:
        np.testing.assert_array_equal(graph.run(x).backward(dy, mode), seq.run(x).backward(dy, mode))
    np.testing.assert_array_equal(graph.forward(x), seq.forward(x))


@pytest.mark.parametrize("mode", MODES)
def test_residual_backward_equals_torch_autograd(mode):
    """Forward and every backward rule through two residual blocks, against torch's chain rule."""
    torch = oracle("torch")
    net = residual()
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 12))
    rec = net.run(x)
    tx = torch.tensor(x, requires_grad=True)
    outputs = torch_graph(net, mode)(tx)
    for name in net.names:
        assert_close(rec.output(name), outputs[name].detach().numpy(), rtol=1e-12, what=f"{name} forward")
    dy = np.random.default_rng(1).standard_normal((2, 5))
    outputs["fc"].backward(torch.tensor(dy))
    assert_close(rec.backward(dy, mode=mode), tx.grad.numpy(), rtol=1e-10, what=f"{mode} at the input")


def test_backward_from_and_to_inner_nodes_equals_torch():
    """start and stop inside the graph: the signal at a block's input, which two nodes read (the
    block and its shortcut), is the sum of both, as torch.autograd.grad says."""
    torch = oracle("torch")
    net = residual()
    x = np.random.default_rng(0).standard_normal((1, 3, 12, 12))
    rec = net.run(x)
    outputs = torch_graph(net)(torch.tensor(x, requires_grad=True))
    signal = np.random.default_rng(2).standard_normal(rec.output("b2.add").shape)
    ours = rec.backward(signal, start="b2.add", stop="b1")
    (theirs,) = torch.autograd.grad(outputs["b2.add"], outputs["b1"], torch.tensor(signal), retain_graph=True)
    assert_close(ours, theirs.numpy(), rtol=1e-12, what="b2.add -> b1")
    # the signal through one branch alone is not the sum: both branches carry a signal
    only_shortcut = rec.backward(signal, start="b2.add", stop="b2.downsample")
    assert np.abs(only_shortcut - signal).max() == 0  # Add copies the signal to each input
    ours = rec.backward(signal, start="b2.add", stop="maxpool")
    (theirs,) = torch.autograd.grad(outputs["b2.add"], outputs["maxpool"], torch.tensor(signal))
    assert_close(ours, theirs.numpy(), rtol=1e-12, what="b2.add -> maxpool")


def test_gradient_equals_finite_differences():
    net = residual(seed=4)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 3, 12, 12))
    w = rng.standard_normal((1, 5))
    grad = net.run(x).backward(w)
    h = 1e-6
    for idx in [(0, 0, 0, 0), (0, 1, 5, 7), (0, 2, 11, 11), (0, 0, 6, 3), (0, 2, 3, 9)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        numeric = ((net.run(xp).output() - net.run(xm).output()) * w).sum() / (2 * h)
        # relative to the largest entry: a pixel no max-pool window picks has a zero derivative
        assert_close(grad[idx], numeric, rtol=1e-7, scale=np.abs(grad).max(), what=f"d score / dx{idx}")
    assert np.count_nonzero(grad) > grad.size // 3


def test_parameter_gradients_equal_torch():
    """Weight and bias gradients of layers inside branches: torch autograd on each layer's module,
    fed its input from the record and the signal at its output."""
    torch = oracle("torch")
    net = residual()
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 12))
    rec = net.run(x)
    dy = np.random.default_rng(1).standard_normal((2, 5))
    names = ("b2.downsample", "b1.conv1", "b2.bn1", "fc", "bn1")
    signals = {name: rec.backward(dy, stop=name) for name in names}
    rec.backward(dy, need_params=True)
    for name in names:
        layer = net[name]
        m = layer.torch_module(torch.nn).double().eval()
        with torch.no_grad():
            for key, value in layer.params.items():
                getattr(m, key).copy_(torch.from_numpy(np.asarray(value)))
        source = net.inputs[name][0]
        m(torch.tensor(x if source == INPUT else rec.output(source))).backward(torch.tensor(signals[name]))
        for key in ("weight", "bias"):
            assert_close(rec.grads[name][key], getattr(m, key).grad.numpy(), rtol=1e-10, what=f"{name}.{key}")


@pytest.mark.parametrize("size", [7, 8])
def test_padded_max_pool_never_picks_padding(size):
    """ResNet's stem pool (3x3, stride 2, padding 1) on all-negative input, where a zero padding
    would win every border window: forward, backward and reverse stage equal torch's (float64),
    and the Keras layers' forward (float32)."""
    torch = oracle("torch")
    pool = mc.MaxPool2D(3, stride=2, padding=1, name="maxpool")
    x = -1 - np.random.default_rng(0).random((2, 3, size, size))
    y, cache = pool.forward(x)
    tx = torch.tensor(x, requires_grad=True)
    ty = pool.torch_module(torch.nn)(tx)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    assert y.shape[2:] == (size // 2 + size % 2,) * 2 and y.max() < -1
    signal = np.random.default_rng(1).standard_normal(y.shape)
    ty.backward(torch.tensor(signal))
    assert_close(pool.backward(signal, cache)[0], tx.grad.numpy(), rtol=1e-15, what="backward")
    assert_close(pool.reverse(signal, cache, x.shape), tx.grad.numpy(), rtol=1e-15, what="reverse")
    keras = oracle("keras")
    model = keras.Sequential(pool.keras_layers(keras, x.shape[1:])[0])
    theirs = model(x.astype(np.float32).transpose(0, 2, 3, 1)).detach().cpu().numpy()
    assert_close(theirs.transpose(0, 3, 1, 2), y, rtol=1e-6, what="Keras forward")
    with pytest.raises(MinicnnError, match="padding must be between 0 and half the window, got 2"):
        mc.MaxPool2D(3, stride=2, padding=2)


@pytest.mark.parametrize("start, stop", [(None, None), ("b2.add", "b1"), ("b2", "maxpool")])
def test_the_independent_deconvnet_on_a_graph_equals_torch(start, stop):
    """tools/deconvnet.py's reverse network on a residual graph (Add's reverse stage copies the
    signal to both branches, and the branches' signals add where they split) equals torch's chain
    rule with DeconvNet's ReLU, from the scores or an inner node, to the input or an inner node."""
    torch = oracle("torch")
    from minicnn.tools.deconvnet import deconvnet_backward

    net = residual()
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 12))
    rec = net.run(x)
    tx = torch.tensor(x, requires_grad=True)
    outputs = torch_graph(net, "deconvnet")(tx)
    top = start or "fc"
    signal = np.random.default_rng(1).standard_normal(rec.output(top).shape)
    ours = deconvnet_backward(net, rec, signal, start=start, stop=stop)
    below = tx if stop is None else outputs[stop]
    (theirs,) = torch.autograd.grad(outputs[top], below, torch.tensor(signal))
    assert_close(ours, theirs.numpy(), rtol=1e-12, what=f"DeconvNet {top} -> {stop or 'input'}")
    assert_close(ours, rec.backward(signal, "deconvnet", start=start, stop=stop), rtol=1e-12,
                 what="the engine's deconvnet rule")  # fmt: skip


# -- bad graphs: one line naming the node ---------------------------------------------------------


def relu(name, reads=None):
    return mc.ReLU(name=name) if reads is None else (mc.ReLU(name=name), reads)


BAD_GRAPHS = [
    (lambda: [relu("a", "b"), relu("b", "a")], r"graph node 'a' is on a cycle: it reads 'b'"),
    (lambda: [relu("a"), relu("b", "c")], r"graph node 'b' reads 'c', which is not a node"),
    (lambda: [relu("a"), relu("b", INPUT)], r"graph node 'a': its output is never read"),
    (lambda: [relu("a"), relu("b", ("a", INPUT))], r"node 'b' takes one input, given 2"),
    (lambda: [relu("a"), (mc.Add(name="b"), "a")], r"node 'b' takes two or more inputs, given 1"),
    (lambda: [relu(INPUT)], r"may not be called 'input'"),
    (
        lambda: [mc.Conv2D(3, 4, 1, name="c"), (mc.Add(name="sum"), ("c", INPUT))],
        r"layer sum \(Add\): inputs of different shapes do not add: \(N, 4, 5, 5\) \+ \(N, 3, 5, 5\)$",
    ),
]


@pytest.mark.parametrize("nodes, message", BAD_GRAPHS)
def test_bad_graphs_are_refused_in_one_line(nodes, message):
    with pytest.raises(MinicnnError, match=message) as info:
        mc.Graph(nodes(), seed=0, meta={"input_shape": [3, 5, 5]})
    assert "\n" not in str(info.value)


def test_shapes_that_do_not_add_fail_at_run_time_too():
    net = mc.Graph([mc.Conv2D(3, 4, 1, name="c"), (mc.Add(name="sum"), ("c", INPUT))], seed=0)
    with pytest.raises(MinicnnError, match=r"layer sum \(Add\): inputs of different shapes do not add"):
        net.run(np.ones((1, 3, 5, 5), np.float32))


def test_a_record_keeps_each_node_and_backward_errors_name_it():
    net = residual()
    rec = net.run(np.ones((1, 3, 12, 12)), stop="b1")
    assert rec.names[-1] == "b1" and "b2.add" not in rec.outputs
    with pytest.raises(MinicnnError, match="layer 'b2.add' was not run"):
        rec.output("b2.add")
    with pytest.raises(MinicnnError, match=r"must have shape \(1, 4, 6, 6\), got \(1, 5\)"):
        rec.backward(np.ones((1, 5)))
    with pytest.raises(MinicnnError, match="unknown backward mode"):
        rec.backward(np.ones((1, 4, 6, 6)), mode="deconv")


def test_adds_torch_module_refuses_a_single_input():
    """A chain's torch mirror (one tensor per module) cannot pass an Add off as the identity."""
    torch = oracle("torch")
    module = mc.Add(name="add").torch_module(torch.nn)
    with pytest.raises(ValueError, match="run it in a graph, not a chain"):
        module(torch.ones(2))
    assert module(torch.ones(2), torch.ones(2), torch.ones(2)).tolist() == [3.0, 3.0]


def test_a_chain_refuses_a_layer_with_several_inputs(tmp_path):
    """Sequential([..., Add]) would add the images of a batch; it is refused, and so is a native
    file whose chain holds an Add (written by hand here, as a hostile file would be)."""
    with pytest.raises(
        MinicnnError, match=r"^layer 'sum' takes several inputs: a chain cannot run it, a Graph can$"
    ):
        mc.Sequential([mc.ReLU(name="r"), mc.Add(name="sum")])
    from minicnn.io.native import to_bytes

    net = mc.Sequential([mc.ReLU(name="r")], meta={"input_shape": [3, 4, 4]})
    net.layers.append(mc.Add(name="sum"))  # past the check: what a crafted file holds
    path = tmp_path / "chain_with_add.h5"
    path.write_bytes(to_bytes(net))
    with pytest.raises(
        MinicnnError, match=r"layer 'sum' takes several inputs: a chain cannot run it"
    ) as info:
        mc.load(path)
    assert "\n" not in str(info.value)


def test_the_summary_names_what_branches_and_sums_read():
    rows = residual().summary().split("\n")
    assert rows[0].split() == ["layer", "kind", "output", "params", "reads"]
    by_name = {row.split()[0]: row for row in rows[1:]}
    assert by_name["b1.add"].endswith("  b1.conv2, maxpool") and "(4, 6, 6)" in by_name["b1.add"]
    assert by_name["b2.downsample"].endswith("  b1") and by_name["b2.add"].endswith("b2.conv2, b2.downsample")
    assert by_name["b1.conv1"] == by_name["b1.conv1"].rstrip() and not by_name["b1.conv1"].endswith("maxpool")
    assert rows[-1].split() == ["total", f"{residual().num_params():,}"]


def test_an_sgd_step_on_a_graph_keeps_the_running_statistics():
    """The trainer's SGD (minicnn/train/optim.py) on a graph: weights and gamma move by the rule
    w -= lr * g (first step, no decay), the BatchNorm running statistics stay as they were."""
    from minicnn.train.optim import SGD

    net = residual()
    before = {(layer.name, key): value.copy() for layer, key, value in net.parameters()}
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 12))
    net.forward(x, train=True)
    net.backward(np.random.default_rng(1).standard_normal((2, 5)), need_params=True)
    grads = {(name, key): g.copy() for name, gs in net.grads.items() for key, g in gs.items()}
    SGD(net, momentum=0.9, weight_decay=0.0).step(0.1)
    for layer, key, value in net.parameters():
        expected = before[layer.name, key] - 0.1 * grads[layer.name, key]
        np.testing.assert_allclose(value, expected, rtol=1e-15, atol=1e-15)
        if key.startswith("running_"):
            np.testing.assert_array_equal(value, before[layer.name, key])
    assert np.abs(net["bn1"].weight - before["bn1", "weight"]).max() > 0
