"""Every layer kind declares everything other code needs about it, and each declaration is right.

Code outside minicnn/layers keeps no table of kinds (ARCHITECTURE.md, "Layers describe themselves"):
the DeconvNet's reverse stage, the equivalence table's row, and the torch and Keras modules of
``verify --against`` and of the test mirror are declared by each layer class (base.DECLARATIONS).
This file walks LAYER_KINDS: a kind that lacks a declaration, or a sample to check it on, fails here
(a probe class lacking one shows the check failing), and each kind's declarations are compared with
torch (forward, and autograd for the reverse stage, float64) and Keras (forward, float32).
"""

from __future__ import annotations

import numpy as np
import pytest
from support import assert_close, oracle
from torch_mirror import to_torch

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.layers import LAYER_KINDS, Layer
from minicnn.layers.base import DECLARATIONS, undeclared

# kind -> (layers, input (C, H, W)): a small network whose LAST layer is a sample of the kind, the
# layers before it bringing the input to the shape it takes. Shapes fit Keras's equivalents too
# (an adaptive pool whose windows tile the map, an average pool that counts its padding).
SAMPLES = {
    "Conv2D": (lambda: [mc.Conv2D(3, 4, 3, stride=2, padding=1)], (3, 9, 8)),
    "ReLU": (lambda: [mc.Conv2D(3, 4, 3, padding=1), mc.ReLU()], (3, 6, 5)),
    "MaxPool2D": (lambda: [mc.MaxPool2D(3, stride=2)], (3, 9, 8)),
    "AvgPool2D": (lambda: [mc.AvgPool2D(3, 2, 1)], (3, 9, 8)),
    "AdaptiveAvgPool2D": (lambda: [mc.AdaptiveAvgPool2D((4, 3))], (3, 8, 6)),
    "Dense": (lambda: [mc.Flatten(), mc.Dense(3 * 4 * 5, 7)], (3, 4, 5)),
    "Flatten": (lambda: [mc.Flatten()], (3, 4, 5)),
    "Dropout": (lambda: [mc.Dropout(0.5)], (3, 4, 5)),
    "GlobalAvgPool2D": (lambda: [mc.GlobalAvgPool2D()], (3, 4, 5)),
    "Softmax": (lambda: [mc.Flatten(), mc.Softmax()], (3, 2, 2)),
    "BatchNorm2D": (lambda: [random_batchnorm(3)], (3, 4, 5)),
    # a layer with several_inputs: its one layer and the shapes of its inputs
    "Add": (lambda: [mc.Add()], [(3, 4, 5), (3, 4, 5), (3, 4, 5)]),
}


def random_batchnorm(channels, seed=0):
    """A BatchNorm2D whose gamma, beta and statistics are random (its initial state is the identity)."""
    rng = np.random.default_rng(seed)
    bn = mc.BatchNorm2D(channels, eps=1e-3)
    bn.weight, bn.bias = rng.uniform(0.5, 1.5, channels), rng.uniform(-0.3, 0.3, channels)
    bn.running_mean, bn.running_var = rng.normal(0, 0.5, channels), rng.uniform(0.3, 3.0, channels)
    return bn


#: the kinds that take one input (checked on a Sequential) and several (checked on their own)
SEVERAL = sorted(kind for kind, cls in LAYER_KINDS.items() if cls.several_inputs)
SINGLE = sorted(set(LAYER_KINDS) - set(SEVERAL))


def check_declared(kinds) -> None:
    """Every class of ``kinds`` (kind -> class) declares all of DECLARATIONS and has a sample."""
    missing = {kind: undeclared(cls) for kind, cls in kinds.items() if undeclared(cls)}
    assert not missing, f"layer kinds lacking declarations (base.DECLARATIONS): {missing}"
    unsampled = sorted(set(kinds) - set(SAMPLES))
    assert not unsampled, f"layer kinds without a sample in SAMPLES: {unsampled}"


def test_every_kind_declares_everything():
    check_declared(LAYER_KINDS)
    assert set(DECLARATIONS) == {"reverse", "equivalence_row", "torch_module", "keras_layers"}


def test_a_kind_lacking_a_declaration_fails():
    """A probe kind that declares all but its reverse stage, and one that declares everything: the
    check fails for the first, naming it and what it lacks, and passes for the second."""

    class Probe(Layer):
        kind = "Probe"
        equivalence_row = ("x", "R", "dX")

        def torch_module(self, nn):
            return nn.Identity()

        def keras_layers(self, keras, input_shape):
            return [], {}

    assert undeclared(Probe) == ["reverse"]
    with pytest.raises(AssertionError, match=r"'Probe': \['reverse'\]"):
        check_declared({**LAYER_KINDS, "Probe": Probe})

    class Complete(Probe):
        def reverse(self, signal, cache, input_shape):
            return signal

    assert undeclared(Complete) == []
    with pytest.raises(AssertionError, match=r"without a sample in SAMPLES: \['Probe'\]"):
        check_declared({**LAYER_KINDS, "Probe": Complete})
    # and one lacking several, where the base class's fallback says what is missing when called
    bare = type("Bare", (Layer,), {"kind": "Bare"})
    assert undeclared(bare) == list(DECLARATIONS)
    with pytest.raises(MinicnnError, match="has no DeconvNet reverse stage"):
        bare(name="bare").reverse(np.ones(2), None, (2,))


def sample(kind, dtype=np.float64):
    layers, shape = SAMPLES[kind]
    net = mc.Sequential(layers(), seed=1, dtype=dtype)
    net.astype(dtype)  # parameters a sample set itself, too
    x = np.random.default_rng(2).standard_normal((2, *shape)).astype(dtype)
    return net, x


def several(kind, dtype=np.float64):
    """(layer, inputs) of a kind with several inputs: its sample layer and one array per input."""
    layers, shapes = SAMPLES[kind]
    rng = np.random.default_rng(2)
    return layers()[-1], tuple(rng.standard_normal((2, *shape)).astype(dtype) for shape in shapes)


@pytest.mark.parametrize("kind", sorted(LAYER_KINDS))
def test_sample_is_the_kind(kind):
    layer = several(kind)[0] if kind in SEVERAL else sample(kind)[0].layers[-1]
    assert type(layer) is LAYER_KINDS[kind]


@pytest.mark.parametrize("kind", SEVERAL)
def test_several_inputs_torch_keras_and_reverse(kind):
    """A layer with several inputs: its torch module on the inputs, the vector-Jacobian product of
    that module for each input as the reverse stage (float64), and its Keras layers (float32)."""
    torch = oracle("torch")
    layer, xs = several(kind)
    y, cache = layer.forward(xs)
    module = layer.torch_module(torch.nn).double()
    txs = [torch.tensor(x, requires_grad=True) for x in xs]
    out = module(*txs)
    assert_close(out.detach().numpy(), y, rtol=1e-12, what=f"{kind} forward")
    signal = np.random.default_rng(3).standard_normal(y.shape)
    out.backward(torch.tensor(signal))
    dec = layer.reverse(signal, cache, xs[0].shape)
    assert len(dec) == len(xs)
    for i, (d, tx) in enumerate(zip(dec, txs)):
        assert_close(d, tx.grad.numpy(), rtol=1e-12, what=f"{kind} reverse stage, input {i}")
    keras = oracle("keras")
    made, weights = layer.keras_layers(keras, xs[0].shape[1:])
    assert not weights
    theirs = made[0]([x.astype(np.float32).transpose(0, 2, 3, 1) for x in xs]).detach().cpu().numpy()
    assert_close(theirs.transpose(0, 3, 1, 2), y, rtol=1e-5, what=f"{kind} Keras forward")


@pytest.mark.parametrize("kind", SINGLE)
def test_torch_module_and_reverse_stage(kind):
    """The torch module computes the layer's forward; the reverse stage is torch autograd's
    vector-Jacobian product of that module (the transposed linear map, Simonyan et al. 2013,
    sec. 4), except at the ReLU, where it rectifies the signal (Zeiler & Fergus 2013, sec. 2.1)."""
    torch = oracle("torch")
    net, x = sample(kind)
    rec = net.run(x)
    model = to_torch(net, torch.float64)
    assert_close(model(torch.tensor(x)).numpy(), rec.output(), rtol=1e-12, what=f"{kind} forward")
    layer = net.layers[-1]
    below = rec.input if len(net.layers) == 1 else rec.output(net.layers[-2].name)
    signal = np.random.default_rng(3).standard_normal(rec.output().shape)
    dec = layer.reverse(signal, rec.cache(layer.name), below.shape)
    tx = torch.tensor(below, requires_grad=True)
    model[-1](tx).backward(torch.tensor(signal))
    if layer.is_rectifier:
        np.testing.assert_array_equal(dec, np.maximum(signal, 0))
        assert np.abs(dec - tx.grad.numpy()).max() > 0.1  # not the gradient: the rules differ here
    else:
        assert_close(dec, tx.grad.numpy(), rtol=1e-12, what=f"{kind} reverse stage")


@pytest.mark.parametrize("kind", SINGLE)
def test_keras_layers(kind):
    """The Keras layers compute the layer's forward on channels-last input (float32)."""
    oracle("keras")
    from minicnn.tools.keras_reference import keras_mirror

    net, x = sample(kind, np.float32)
    ours = net.run(x).output()
    model = keras_mirror(net, x.shape[1:])
    out = model(x.transpose(0, 2, 3, 1))
    out = (out[0] if isinstance(out, (list, tuple)) else out).detach().cpu().numpy()
    theirs = out.transpose(0, 3, 1, 2) if out.ndim == 4 else out
    assert_close(theirs, ours, rtol=1e-5, what=f"{kind} Keras forward")


@pytest.mark.parametrize("kind", sorted(LAYER_KINDS))
def test_equivalence_row(kind):
    row = LAYER_KINDS[kind].equivalence_row
    assert isinstance(row, tuple) and len(row) == 3 and all(isinstance(s, str) and s for s in row)


# -- the backward rules reach only the layers that read them -----------------------------------------


def test_only_layers_that_read_a_rule_receive_it():
    """A layer whose backward takes no rule runs under every rule (the record asks reads_rule);
    the ReLU, which reads it, gets each rule and applies it."""
    from minicnn.rules import MODES

    class Twice(Layer):  # y = 2x, backward without a rule parameter at all
        kind = "Twice"

        def forward(self, x, train=False, rng=None):
            return 2 * x, None

        def backward(self, dy, cache, need_params=False):
            return 2 * dy, None

    # the ReLU reads the three named rules; the linear layers read LRP rules (minicnn/rules.py)
    reading = {
        "ReLU",
        "Conv2D",
        "Dense",
        "BatchNorm2D",
        "AvgPool2D",
        "AdaptiveAvgPool2D",
        "GlobalAvgPool2D",
        "Add",
    }
    assert {k for k, cls in LAYER_KINDS.items() if cls.reads_rule} == reading
    net = mc.Sequential([Twice(name="twice"), mc.ReLU(name="relu")], dtype=np.float64)
    x = np.array([[-1.0, 2.0, 3.0]])
    rec = net.run(x)
    dy = np.array([[5.0, -7.0, 11.0]])
    expected = {"gradient": [0, -14, 22], "deconvnet": [10, 0, 22], "guided": [0, 0, 22]}
    assert set(expected) == set(MODES)
    for mode in MODES:
        np.testing.assert_array_equal(rec.backward(dy, mode=mode), [expected[mode]])


@pytest.mark.parametrize("mode", ["deconv", "Gradient", None, 1])
def test_an_unknown_rule_is_one_error_naming_the_choices(mode):
    net = mc.Sequential([mc.ReLU(name="relu")], dtype=np.float64)
    rec = net.run(np.ones((1, 3)))
    with pytest.raises(
        MinicnnError, match="expected one of gradient, deconvnet, guided, an LRP rule"
    ) as info:
        rec.backward(np.ones((1, 3)), mode=mode)
    assert "\n" not in str(info.value) and repr(mode) in str(info.value)
