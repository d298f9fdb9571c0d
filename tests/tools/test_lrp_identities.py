"""The provable equalities the LRP and DeepLIFT rules must meet, each measured against the engine's
gradient mode (a different code path through every layer), and each shown to break when its
condition fails (biases present, a large epsilon):

  * LRP-0 on a ReLU / max-pool network is gradient x input (Ancona et al. 2018, sec. 3;
    Kindermans et al. 2016), biases or not, also through residual sums (mc.resnet18: the sum's
    z-rule shares); it conserves the score only without biases;
  * DeepLIFT-Rescale with a zero reference on a bias-free ReLU network is gradient x input, hence
    epsilon-LRP as epsilon -> 0 (Ancona et al. 2018, sec. 3.2).
"""

from __future__ import annotations

import numpy as np
import pytest
from rule_nets import vgg_with
from support import assert_close

import minicnn as mc
from minicnn import rules
from minicnn.errors import MinicnnError

#: LRP-0 at every layer, the sum and the poolings included (no stabiliser anywhere)
PURE_Z = rules.Composite("z", rules.LRP0(), rules.LRP0(), stabilizer=0.0)


def without_biases(net):
    for layer in net.layers:
        if layer.has_params and "running_mean" not in layer.params:
            layer.bias = np.zeros_like(layer.bias)
    return net


def gradient_times_input(net, x, targets):
    """x * dS_t/dx by the engine's gradient mode (LRP starts from the score S_t; the z-rule's
    first step divides it by S_t again, so the map is the gradient of S_t itself, times x)."""
    rec = net.run(x)
    dy = np.zeros_like(rec.output())
    dy[np.arange(len(x)), targets] = 1.0
    return x * rec.backward(dy, mode="gradient")


def test_lrp0_is_gradient_times_input_with_or_without_biases():
    """The identity needs ReLU and max-pooling, not bias-free layers: by induction the relevance at
    every layer's input is x * dS/dx (a bias's share is dropped, so only conservation needs
    bias-free layers: measured both ways)."""
    x = np.random.default_rng(12).standard_normal((2, 3, 16, 16))
    for net in (vgg_with(False, seed=11), without_biases(vgg_with(False, seed=11))):
        expected = gradient_times_input(net, x, [1, 2])
        ours = mc.lrp(net, x, target=[1, 2], composite=PURE_Z)
        assert_close(ours, expected, rtol=1e-12, what="LRP-0")
        assert_close(mc.lrp(net, x, target=[1, 2], composite="lrp0"), expected, rtol=1e-12, what="lrp0")
        big = mc.lrp(net, x, target=[1, 2], composite=rules.Epsilon(0.5))  # a large epsilon: breaks
        assert np.abs(big - expected).max() > 1e-3 * np.abs(expected).max()
    scores = net.run(x).output()[[0, 1], [1, 2]]
    assert_close(ours.sum(axis=(1, 2, 3)), scores, rtol=1e-12, what="conservation without biases")
    biased_net = vgg_with(False, seed=11)
    kept = mc.lrp(biased_net, x, target=[1, 2], composite=PURE_Z).sum(axis=(1, 2, 3))
    assert np.abs(kept - biased_net.run(x).output()[[0, 1], [1, 2]]).max() > 1e-3 * np.abs(scores).max()


def test_lrp0_is_gradient_times_input_through_residual_sums():
    net = mc.resnet18(seed=0, num_classes=10, input_size=64, dtype=np.float64)
    x = np.random.default_rng(13).standard_normal((1, 3, 64, 64))
    target = int(net.run(x).output().argmax())
    # BatchNorm in torch's initial state (mean 0, beta 0): bias-free, each a scale 1 / sqrt(1 + eps)
    expected = gradient_times_input(net, x, [target])
    ours = mc.lrp(net, x, target=target, composite=PURE_Z)
    assert_close(ours, expected, rtol=1e-10, what="LRP-0 on ResNet-18")
    assert abs(ours.sum() - net.run(x).output()[0, target]) < 1e-8 * abs(ours).sum()  # conservation


def test_deeplift_zero_reference_is_epsilon_lrp_without_biases():
    net = without_biases(vgg_with(True, seed=14))
    for layer in net.layers:  # BatchNorm without shift: mean 0, beta 0
        if "running_mean" in layer.params:
            layer.running_mean, layer.bias = np.zeros(layer.channels), np.zeros(layer.channels)
    x = np.random.default_rng(15).standard_normal((2, 3, 16, 16))
    d = mc.deeplift(net, x, target=[3, 0], baseline=0)
    assert_close(d, mc.lrp(net, x, target=[3, 0], composite=PURE_Z), rtol=1e-12, what="DeepLIFT vs LRP-0")
    small = rules.Composite("eps", rules.Epsilon(1e-9), rules.Epsilon(1e-9), stabilizer=1e-9)
    assert_close(d, mc.lrp(net, x, target=[3, 0], composite=small), rtol=1e-6, what="DeepLIFT vs eps-LRP")
    biased_net = vgg_with(True, seed=14)  # with biases the reference's activations move: breaks
    gap = mc.deeplift(biased_net, x, target=[3, 0]) - mc.lrp(biased_net, x, target=[3, 0], composite=PURE_Z)
    assert np.abs(gap).max() > 1e-2 * np.abs(d).max()


def test_deeplift_on_resnet18_sums_to_the_difference_where_no_max_differs():
    net = mc.resnet18(seed=1, num_classes=10, input_size=64, dtype=np.float64)
    x = np.random.default_rng(16).standard_normal((1, 3, 64, 64))
    d = mc.deeplift(net, x, target=4, baseline=0)
    delta = net.run(x).output()[0, 4] - net.run(np.zeros_like(x)).output()[0, 4]
    # zero reference: every max-pool window of the reference is constant, so the input's switches
    # are a valid choice for it too and summation-to-delta holds exactly
    assert_close(d.sum(), delta, rtol=1e-9, what="summation to delta, ResNet-18")


def test_bad_rules_and_baselines_are_one_line():
    net = vgg_with(False)
    x = np.zeros((1, 3, 16, 16))
    with pytest.raises(MinicnnError, match="unknown LRP composite 'epsilon_plus'"):
        mc.lrp(net, x, composite="epsilon_plus")
    with pytest.raises(MinicnnError, match="unknown LRP composite"):
        mc.lrp(net, x, composite=rules.Epsilon)  # the class, not a rule value
    with pytest.raises(MinicnnError, match=r"baseline must be a number, a \(C, H, W\)"):
        mc.deeplift(net, x, baseline=np.zeros((3, 8, 8)))
    with pytest.raises(MinicnnError, match="baseline must be finite"):
        mc.deeplift(net, x, baseline=np.nan)
    with pytest.raises(MinicnnError, match="reference record must be a pass of the same layers"):
        net.run(x).backward(np.ones((1, 5)), mode=rules.DeepLift(net.run(np.zeros((2, 3, 16, 16)))))
    with pytest.raises(MinicnnError, match="DeepLift's reference must be the record of a forward pass"):
        net.run(x).backward(np.ones((1, 5)), mode=rules.DeepLift(np.zeros((1, 3, 16, 16))))


def test_named_modes_unchanged():
    """The three named rules still compute what they did: gradient mode is torch-checked elsewhere;
    here the linear layers under them ignore the LRP machinery (same result as before: gradient x
    input identity above uses it), and check_mode still accepts exactly MODES among strings."""
    assert rules.check_mode("guided") == "guided"
    with pytest.raises(MinicnnError, match="unknown backward mode 'lrp'"):
        rules.check_mode("lrp")


def folded(net):
    """The same function with each BatchNorm folded into the convolution before it (float64)."""
    from minicnn.io.fold_batchnorm import fold_batchnorm

    layers = []
    for layer in net.layers:
        if "running_mean" in layer.params:
            conv = layers[-1]
            p = layer.params
            w, b = fold_batchnorm(conv.weight, conv.bias, p["weight"], p["bias"], p["running_mean"],
                                  p["running_var"], layer.eps)  # fmt: skip
            twin = mc.Conv2D(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                             name=conv.name)  # fmt: skip
            twin.weight, twin.bias = w, b
            layers[-1] = twin
            continue
        layers.append(layer)
    return mc.Sequential(layers, dtype=np.float64)


def test_batchnorm_kept_as_a_layer_against_folded():
    """LRP-0 through a convolution and its BatchNorm equals LRP-0 of the folded convolution (the
    z-rule of a composition of affine maps telescopes); z+ does not (a negative BatchNorm scale
    turns positive contributions negative), which is why Zennit and the loaders fold first."""
    net = vgg_with(True, seed=17)
    twin = folded(net)
    x = np.random.default_rng(18).standard_normal((2, 3, 16, 16))
    assert_close(twin.run(x).output(), net.run(x).output(), rtol=1e-12, what="folded forward")
    kept = mc.lrp(net, x, target=[1, 4], composite=PURE_Z)
    assert_close(mc.lrp(twin, x, target=[1, 4], composite=PURE_Z), kept, rtol=1e-10, what="LRP-0, folded")
    zplus_kept, zplus_folded = (mc.lrp(n, x, target=[1, 4], composite="zplus") for n in (net, twin))
    assert np.abs(zplus_kept - zplus_folded).max() > 1e-3 * np.abs(zplus_folded).max()


@pytest.mark.parametrize("name", sorted(rules.COMPOSITES))
def test_every_named_composite_runs_on_resnet18_float32(name):
    """Each named composite through a float32 ResNet-18 (stride-2 7x7 first convolution, padded
    max-pool, BatchNorm layers, residual sums, GAP): a finite map like x, of x's dtype, whose sum
    is within the stabilisers' and biases' reach of the score (BatchNorm in torch's initial state
    has no shift: every rule with alpha - beta = 1 conserves up to the stabilisers)."""
    net = mc.resnet18(seed=2, num_classes=10, input_size=64)
    x = np.random.default_rng(19).standard_normal((1, 3, 64, 64)).astype(np.float32)
    r = mc.lrp(net, x, target=3, composite=name)
    assert r.shape == x.shape and r.dtype == np.float32 and np.isfinite(r).all()
    score = float(net.run(x).output()[0, 3])
    if name not in ("alpha2beta1", "epsilon-gamma-box", "gamma"):
        assert abs(float(r.sum(dtype=np.float64)) - score) < 1e-2 * abs(score) + 1e-3, (name, r.sum(), score)
