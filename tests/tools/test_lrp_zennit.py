"""LRP rules and composites against Zennit (Anders et al. 2021), float64, on torchvision-style VGGs
with and without BatchNorm: the same weights, the same input, the same target, Zennit's own hooks.

minicnn's map starts from the target's score (Bach et al. 2015); Zennit starts from whatever output
relevance it is given, here the one-hot vector times the score, so the two maps are the same
quantity. BatchNorm: minicnn's loader folds it into the convolution before it, Zennit's
SequentialMergeBatchNorm canonizer does the same fold on the torch model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch_models as tm
from frameworks import zennit
from support import assert_close, oracle

import minicnn as mc
from minicnn import rules
from minicnn.io.fold_batchnorm import fold_batchnorm

SIZE = 32


@pytest.fixture(scope="module", params=[False, True], ids=["vgg", "vgg_bn"])
def pair(request, tmp_path_factory):
    """(minicnn net float64, torch model float64, images (2, 3, 32, 32) float64, batchnorm?)."""
    torch = oracle("torch")
    model = tm.torchvision_vgg(bn=request.param, side=2, seed=4)
    path = tm.save(model, tmp_path_factory.mktemp("lrp") / "vgg.pth", "zip")
    net = mc.load(path)
    net.astype(np.float64)
    if request.param:  # the loader folded in float64 and stored float32: fold again, kept in float64
        # NOTE Zennit 0.5.1's SequentialMergeBatchNorm sets the merged BatchNorm's statistics to the
        # identity but leaves its eps, so the canonized model divides every BatchNorm output by
        # sqrt(1 + eps) (4e-5 of the scores with torch's 1e-5): with eps = 0 it is the model itself.
        for m in model.features:
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eps = 0.0
        convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
        norms = [m for m in model.features if isinstance(m, torch.nn.BatchNorm2d)]
        ours = [layer for layer in net.layers if layer.is_convolution]
        for layer, conv, bn in zip(ours, convs, norms, strict=True):
            params = [t.detach().double().numpy() for t in (conv.weight, conv.bias, bn.weight, bn.bias)]
            stats = [t.double().numpy() for t in (bn.running_mean, bn.running_var)]
            layer.weight, layer.bias = fold_batchnorm(*params, *stats, eps=bn.eps)
    x = (tm.images(2, SIZE, seed=5).transpose(0, 3, 1, 2) - 128.0) / 64.0
    return net, model.to(torch.float64), x, request.param


def zennit_map(model, x, composite, batchnorm, targets):
    """Zennit's relevance at the input, the output relevance one-hot times the target's score."""
    torch = oracle("torch")
    z = zennit()
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm

    if batchnorm:
        composite.canonizers = [SequentialMergeBatchNorm()]
    xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
    idx = torch.as_tensor(targets)

    def start(output):
        onehot = torch.zeros_like(output)
        onehot[torch.arange(len(idx)), idx] = output[torch.arange(len(idx)), idx]
        return onehot

    with Gradient(model=model, composite=composite) as attributor:
        _, relevance = attributor(xt, start)
    del z
    return relevance.detach().numpy()


def uniform_composite(rule):
    """Zennit's layer map for one rule at every convolution and linear layer (as ``rules.uniform``)."""
    z = zennit()
    from zennit.composites import LayerMapComposite
    from zennit.layer import Sum
    from zennit.rules import Norm, Pass
    from zennit.types import Activation, AvgPool, BatchNorm, Convolution

    torch = oracle("torch")
    return (
        LayerMapComposite(
            [
                (Activation, Pass()),
                (Sum, Norm()),
                (AvgPool, Norm()),
                (BatchNorm, Pass()),
                (Convolution, rule),
                (torch.nn.Linear, rule),
            ]  # fmt: skip
        )
        if z
        else None
    )


def zennit_rule(name):
    zr = zennit().rules
    return {
        "lrp0": lambda: zr.Epsilon(epsilon=0.0),
        "epsilon": lambda: zr.Epsilon(epsilon=1e-6),
        "epsilon-big": lambda: zr.Epsilon(epsilon=0.5),
        "gamma": lambda: zr.Gamma(gamma=0.25),
        "zplus": lambda: zr.ZPlus(),
        "alpha1beta0": lambda: zr.AlphaBeta(alpha=1.0, beta=0.0),
        "alpha2beta1": lambda: zr.AlphaBeta(alpha=2.0, beta=1.0),
        "flat": lambda: zr.Flat(),
        "wsquare": lambda: zr.WSquare(),
    }[name]()


MINICNN_RULES = {
    "lrp0": rules.LRP0(),
    "epsilon": rules.Epsilon(1e-6),
    "epsilon-big": rules.Epsilon(0.5),
    "gamma": rules.Gamma(0.25),
    "zplus": rules.ZPlus(),
    "alpha1beta0": rules.AlphaBeta(1.0, 0.0),
    "alpha2beta1": rules.AlphaBeta(2.0, 1.0),
    "flat": rules.Flat(),
    "wsquare": rules.WSquare(),
}


@pytest.mark.parametrize("name", list(MINICNN_RULES))
def test_rule_equals_zennit(pair, name):
    net, model, x, bn = pair
    targets = np.array([1, 7])
    ours = mc.lrp(net, x, target=list(targets), composite=MINICNN_RULES[name])
    theirs = zennit_map(model, x, uniform_composite(zennit_rule(name)), bn, targets)
    assert_close(ours, theirs, rtol=1e-6, what=f"LRP {name} vs Zennit")


def zennit_composite(name, x):
    from zennit import composites as zc

    zennit()
    if name == "epsilon-gamma-box":
        torch = oracle("torch")
        low = torch.from_numpy(x.min(axis=(0, 2, 3))[None, :, None, None])
        high = torch.from_numpy(x.max(axis=(0, 2, 3))[None, :, None, None])
        return zc.EpsilonGammaBox(low=low, high=high)
    return {
        "epsilon-plus": zc.EpsilonPlus,
        "epsilon-plus-flat": zc.EpsilonPlusFlat,
        "epsilon-alpha2-beta1": zc.EpsilonAlpha2Beta1,
    }[name]()


@pytest.mark.parametrize(
    "name", ["epsilon-plus", "epsilon-plus-flat", "epsilon-alpha2-beta1", "epsilon-gamma-box"]
)
def test_composite_equals_zennit(pair, name):
    net, model, x, bn = pair
    targets = np.array([3, 0])
    ours = mc.lrp(net, x, target=list(targets), composite=name)
    theirs = zennit_map(model, x, zennit_composite(name, x), bn, targets)
    assert_close(ours, theirs, rtol=1e-6, what=f"{name} vs Zennit")


def test_rules_by_layer_name_equal_zennit(pair):
    """A Composite's by_name (minicnn's layer names are torchvision's module names here) against
    Zennit's NameLayerMapComposite: named layers first, the rest by type."""
    net, model, x, bn = pair
    z = zennit()
    from zennit.composites import NameLayerMapComposite

    named = {
        "features.3": ("zplus", rules.ZPlus()),
        "classifier.3": ("alpha2beta1", rules.AlphaBeta(2.0, 1.0)),
    }
    if bn:  # the BatchNorm model's module indices
        named = {"features.4": named["features.3"], "classifier.3": named["classifier.3"]}
    ours = rules.Composite(
        "named",
        rules.Epsilon(1e-6),
        rules.Epsilon(1e-6),
        by_name=tuple((k, r) for k, (_, r) in named.items()),
    )
    assert all(name in net.names for name in named)
    theirs_composite = NameLayerMapComposite(
        name_map=[((k,), zennit_rule(n)) for k, (n, _) in named.items()],
        layer_map=uniform_composite(z.rules.Epsilon(1e-6)).layer_map,
    )
    targets = np.array([2, 5])
    theirs = zennit_map(model, x, theirs_composite, bn, targets)
    assert_close(mc.lrp(net, x, target=list(targets), composite=ours), theirs, rtol=1e-6, what="by name")
    plain = mc.lrp(net, x, target=list(targets), composite="epsilon")
    assert np.abs(plain - theirs).max() > 1e-3 * np.abs(theirs).max()  # the named rules matter
