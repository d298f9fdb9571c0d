"""The sections of the equivalence suite against independent references: torch autograd and Captum
for the signals, a torch DeconvNet for the ReLU counts, torch's own max-pool indices for the switches."""

import numpy as np
import pytest
from support import oracle
from torch_mirror import to_torch

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.paths import DEFAULT_MODEL
from minicnn.tools import equivalence as equivalence_module

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks")
EQUALITIES = ("deconvnet", "guided", "switches", "cam")


def torch_relu_counts(net, x, targets):
    """For each ReLU of a chain: the (R < 0, X > 0) and (R > 0, X <= 0) counts, with R the signal a
    torch DeconvNet (a hand-written autograd.Function at each ReLU) delivers to the ReLU's output
    and X its forward input."""
    torch = oracle("torch")

    class DeconvReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp):
            return inp.clamp(min=0)

        @staticmethod
        def backward(ctx, grad):
            return grad.clamp(min=0)

    model = to_torch(net, torch.float64)
    seen = {}
    h = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    for i, layer in enumerate(net.layers):
        if not layer.is_rectifier:
            h = model[i](h)
            continue
        inp, h = h.detach(), DeconvReLU.apply(h)
        seen[layer.name] = [inp, None]
        h.register_hook(lambda g, name=layer.name: seen[name].__setitem__(1, g.detach()))
    h[torch.arange(len(x)), torch.as_tensor(targets)].sum().backward()
    return {
        name: (int(((r < 0) & (inp > 0)).sum()), int(((r > 0) & (inp <= 0)).sum()))
        for name, (inp, r) in seen.items()
    }


def check_equalities(res, bound):
    for name in EQUALITIES:
        section = res.section(name)
        for row in section.rows:
            assert row.holds is True and row.gap <= bound, (name, row)


def test_small_net_float64(make_small_vgg):
    net = make_small_vgg(seed=4).astype(np.float64)
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16))
    res = mc.equivalence(net, x, [0, 2], progress=False)
    check_equalities(res, 1e-12)
    assert [s.name for s in res.sections] == list(equivalence_module.SECTION_NAMES)
    assert not res.failures()
    # the ReLU counts: predicted from R and X, measured from the two rules, and a torch DeconvNet's
    expected = torch_relu_counts(net, x, [0, 2])
    relus = [r for r in res.rows if r.predicted is not None]
    assert {r.name for r in relus} == set(expected)
    for r in relus:
        a, b = expected[r.name]
        assert r.split["predicted R<0,X>0"] == a and r.split["predicted R>0,X<=0"] == b, r
        assert r.predicted == r.measured == a + b and a + b > 0, r
        assert r.split["measured R<0"] == a and r.split["measured R>0"] == b, r
    # every layer the score reaches has a row in each rule section, and the whole network one
    assert [r.name for r in res.section("deconvnet").rows] == [*net.names[::-1], "whole network"]


def test_whole_network_rows_compare_what_captum_computes(make_small_vgg):
    """The engine's whole-network deconvnet / guided signals (one side of the rows) are Captum's."""
    torch, attr = oracle("torch"), oracle("captum.attr")
    net = make_small_vgg(seed=2).astype(np.float64)
    x = np.random.default_rng(5).standard_normal((2, 3, 16, 16))
    from minicnn.tools.deconvnet import guided_backward
    from minicnn.tools.targets import one_hot

    rec = net.run(x)
    ours = guided_backward(net, rec, one_hot(np.array([1, 3]), rec.output()))
    ref = attr.GuidedBackprop(to_torch(net, torch.float64)).attribute(torch.tensor(x), target=[1, 3])
    np.testing.assert_allclose(ours, ref.numpy(), rtol=0, atol=1e-12 * np.abs(ours).max())


def test_switches_agree_with_torch_indices(make_small_vgg):
    """The switches the section checks are torch's max-pool indices (an independent argmax)."""
    torch = oracle("torch")
    net = make_small_vgg(seed=3).astype(np.float64)
    x = np.random.default_rng(2).standard_normal((2, 3, 16, 16))
    res = mc.equivalence(net, x, [0, 1], sections=["switches"], progress=False)
    rows = res.section("switches").rows
    assert [r.name for r in rows] == [layer.name for layer in net.layers if layer.kind == "MaxPool2D"]
    rec = net.run(x)
    for row in rows:
        layer = net[row.name]
        source = rec.inputs[row.name][0]
        inp = torch.tensor(rec.output(source))
        _, idx = torch.nn.functional.max_pool2d(inp, layer.kernel_size, layer.stride, return_indices=True)
        w = inp.shape[3]
        sw = rec.cache(row.name).switches.astype(np.int64)
        ho, wo = sw.shape[2:]
        rows_ = np.arange(ho)[:, None] * layer.stride + sw // layer.kernel_size[1]
        cols = np.arange(wo)[None, :] * layer.stride + sw % layer.kernel_size[1]
        assert np.array_equal(rows_ * w + cols, idx.numpy())
        assert row.measured == 0 and row.numbers["switches"] == sw.size and row.holds


def test_cam_section_on_the_shipped_gap_model(gap_net, make_digit_images):
    net = gap_net
    res = mc.equivalence(net, make_digit_images(net), [0, 1, 2, 3], sections=["cam"], progress=False)
    (row,) = res.section("cam").rows
    assert res.section("cam").conditions[0].holds
    assert row.gap <= 1e-5 and row.holds, row  # float32
    assert row.name.startswith("block3_conv1_relu")


def test_cam_section_on_resnet18_float64():
    net = mc.resnet18(seed=0, num_classes=10, input_size=64).astype(np.float64)
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64))
    res = mc.equivalence(net, x, [3], sections=["cam", "deconvnet", "guided"], progress=False)
    (row,) = res.section("cam").rows
    assert row.gap <= 1e-12 and row.holds and row.name.startswith("layer4.1"), row
    for name in ("deconvnet", "guided"):  # a graph: Add rows and the summed signals of the shortcuts
        rows = res.section(name).rows
        assert any(net[r.name].several_inputs for r in rows if r.name in net.names)
        assert all(r.holds for r in rows), [r for r in rows if not r.holds]


def test_cam_section_says_which_condition_fails(make_small_vgg):
    net = make_small_vgg(seed=1).astype(np.float64)
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16))
    section = mc.equivalence(net, x, [0], sections=["cam"], progress=False).section("cam")
    assert section.rows == [] and not section.conditions[0].holds
    assert "GlobalAvgPool2D -> Dense" in section.text() and "FAILS" in section.text()


def test_convergence_against_captum(make_small_vgg):
    """The image row's cosines are those of Captum's maps for the target and the runner-up class."""
    torch, attr = oracle("torch"), oracle("captum.attr")
    net = make_small_vgg(seed=5, classes=4).astype(np.float64)
    x = np.random.default_rng(7).standard_normal((2, 3, 16, 16))
    res = mc.equivalence(net, x, [0, 1], sections=["convergence"], progress=False)
    section = res.section("convergence")
    image = section.rows[-1]
    assert image.name == "image" and image.holds is None
    scores = net.run(x).output().copy()
    scores[[0, 1], [0, 1]] = -np.inf
    other = scores.argmax(axis=1)
    model = to_torch(net, torch.float64)
    xt = torch.tensor(x)
    for rule, method, kwargs in [
        ("gradient", "Saliency", {"abs": False}),
        ("deconvnet", "Deconvolution", {}),
        ("guided", "GuidedBackprop", {}),
    ]:
        a = getattr(attr, method)(model).attribute(xt, target=[0, 1], **kwargs).numpy()
        b = getattr(attr, method)(model).attribute(xt, target=other.tolist(), **kwargs).numpy()
        cos = np.mean(
            [a[i].ravel() @ b[i].ravel() / np.linalg.norm(a[i]) / np.linalg.norm(b[i]) for i in range(2)]
        )
        assert abs(image.numbers[f"cos {rule}"] - cos) < 1e-10, (rule, image.numbers, cos)
    for rule in ("zplus", "alpha2beta1"):  # the LRP composites: the walk with rules.assign vs mc.lrp
        a, b = (mc.lrp(net, x, t, composite=rule) for t in ([0, 1], other))
        cos = np.mean(
            [a[i].ravel() @ b[i].ravel() / np.linalg.norm(a[i]) / np.linalg.norm(b[i]) for i in range(2)]
        )
        assert abs(image.numbers[f"cos {rule}"] - cos) < 1e-10, (rule, image.numbers, cos)


def test_unknown_section_is_one_line(small_net, small_images):
    with pytest.raises(MinicnnError, match="unknown equivalence section 'lrp-9'.*simonyan"):
        mc.equivalence(small_net, small_images, [0, 0, 0], sections=["lrp-9"])


def test_conditions_measured_on_the_network_and_its_bias_free_copy(make_small_vgg):
    from minicnn.tools.equivalence_conditions import (
        bias_free_copy,
        homogeneous,
        layer_facts,
        no_biases,
        relu_maxpool,
    )

    net = make_small_vgg(seed=4).astype(np.float64)
    for layer, key, value in net.parameters():
        if key == "bias":
            setattr(layer, key, value + 0.1)  # the initialiser's biases may be zero
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16))
    facts = layer_facts(net, net.run(x))
    assert relu_maxpool(facts).holds
    biases = no_biases(facts)
    assert not biases.holds and "5 of 13 layers" in biases.detail, biases
    assert not homogeneous(facts).holds
    twin = bias_free_copy(net)
    assert any(np.any(v != 0) for layer, k, v in net.parameters() if k == "bias")  # net unchanged
    facts = layer_facts(twin, twin.run(x))
    assert no_biases(facts).holds and homogeneous(facts).holds and relu_maxpool(facts).holds
    # a nonlinearity other than ReLU / max-pool is caught by measurement: tanh after the first conv
    conv = net.layers[0].forward
    net.layers[0].forward = lambda x, train=False, rng=None: (np.tanh(conv(x)[0]), conv(x)[1])
    facts = layer_facts(net, net.run(x))
    assert not relu_maxpool(facts).holds


# -- the relevance sections: LRP-0, DeepLIFT, IG, z+ / excitation -----------------------------------

RELEVANCE = ("lrp0", "deeplift", "ig", "zplus")


def test_relevance_sections_on_the_shipped_model_float64(digit_net, make_digit_images):
    """The shipped VGG has biases: LRP-0 = gradient x input holds on it (biases are in z); DeepLIFT,
    IG and excitation show their gap there and hold on the bias-free copy, each at <= 1e-12."""
    net = mc.load(DEFAULT_MODEL).astype(np.float64)
    x = make_digit_images(net)
    res = mc.equivalence(net, x, [0, 1, 2, 3], sections=RELEVANCE, progress=False)
    (lrp0,) = res.section("lrp0").rows
    assert lrp0.holds and lrp0.gap <= 1e-12, lrp0
    for name in ("deeplift", "ig"):
        network, copy = res.section(name).rows
        assert network.holds is None and "no biases" in network.failed and network.gap > 1e-2, network
        assert copy.name == "bias-free copy" and copy.holds and copy.gap <= 1e-12, copy
    alpha, network, copy = res.section("zplus").rows
    assert alpha.holds and alpha.gap <= 1e-12
    assert network.holds is None and network.gap > 1e-2 and copy.holds and copy.gap <= 1e-12
    assert not res.failures()


def test_ig_row_gap_is_captums(digit_net, make_digit_images):
    """The IG row's gap on the biased network, recomputed from Captum's IntegratedGradients (zero
    baseline, the same quadrature) and torch's gradient x input."""
    torch, attr = oracle("torch"), oracle("captum.attr")
    from minicnn.tools.equivalence_relevance import IG_METHOD, IG_STEPS
    from minicnn.tools.equivalence_section import gap

    net = mc.load(DEFAULT_MODEL).astype(np.float64)
    x = make_digit_images(net, n=2)
    row = mc.equivalence(net, x, [3, 5], sections=["ig"], progress=False).section("ig").rows[0]
    model = to_torch(net, torch.float64)
    xt = torch.tensor(x)
    ig = attr.IntegratedGradients(model).attribute(xt, target=[3, 5], n_steps=IG_STEPS, method=IG_METHOD)
    gxi = attr.InputXGradient(model).attribute(xt, target=[3, 5])
    assert abs(row.gap - gap(ig.detach().numpy(), gxi.detach().numpy())) < 1e-9 * row.gap, row


def test_relevance_rows_say_why_a_side_cannot_run():
    """Excitation backprop refuses graphs: the row says so in one line instead of a gap."""
    net = mc.resnet18(seed=0, num_classes=10, input_size=32).astype(np.float64)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32))
    section = mc.equivalence(net, x, [1], sections=["zplus"], progress=False).section("zplus")
    refused = [r for r in section.rows if r.gap is None]
    assert refused and all("excitation" in r.failed for r in refused), section.rows
