"""LRP against Captum's LRP (Kokhlikyan et al. 2020), float64, and Captum's conventions stated.

Captum's LRP differs from the papers and from Zennit in three ways, each measured here:
  * every layer takes the epsilon rule by default, with epsilon 1e-9 (``EpsilonRule``), not Zennit's
    1e-6 nor the 0.01 of Bach et al.: minicnn's map with epsilon = stabiliser = 1e-9 equals it;
  * max-pooling takes the epsilon rule too: the window's maximum receives x_max R / (x_max + eps),
    not all of R (winner-take-all, Zennit's and minicnn's): with Captum's epsilon at max-pooling
    raised to 0.5, the two maps differ by exactly that factor at each max-pool's output;
  * the map is Captum's normalised relevance times the target's score, the convention minicnn uses;
  * BatchNorm2d kept as a layer takes the epsilon rule of its affine map, as minicnn's does.
ReLU and Dropout pass relevance unchanged in both. Captum refuses layers it has no rule for
(nn.Flatten): the mirror's Flatten gets Captum's EpsilonRule, the epsilon rule of the identity
(its IdentityRule fails on a Flatten: "hook '_backward_hook_input' has changed the size of value").
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from rule_nets import vgg_with
from support import assert_close, oracle
from torch_mirror import to_torch

import minicnn as mc
from minicnn import rules

CAPTUM_EPS = 1e-9  # captum.attr._utils.lrp_rules.EpsilonRule's default


def captum_lrp(net, x, targets, maxpool_eps=CAPTUM_EPS):
    torch = oracle("torch")
    oracle("captum")
    from captum.attr import LRP
    from captum.attr._utils.lrp_rules import EpsilonRule

    model = to_torch(net, torch.float64)
    for module in model:
        if isinstance(module, torch.nn.Flatten):
            module.rule = EpsilonRule()
        if isinstance(module, torch.nn.MaxPool2d):
            module.rule = EpsilonRule(epsilon=maxpool_eps)
    xt = torch.from_numpy(np.ascontiguousarray(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = LRP(model).attribute(xt, target=[int(t) for t in targets])
    return out.detach().numpy()


CAPTUM_COMPOSITE = rules.Composite(
    "captum", rules.Epsilon(CAPTUM_EPS), rules.Epsilon(CAPTUM_EPS), stabilizer=CAPTUM_EPS
)


@pytest.mark.parametrize("batchnorm", [False, True], ids=["vgg", "vgg_bn_layers"])
def test_epsilon_equals_captum(batchnorm):
    net = vgg_with(batchnorm)
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16))
    targets = [2, 4]
    ours = mc.lrp(net, x, target=targets, composite=CAPTUM_COMPOSITE)
    assert_close(ours, captum_lrp(net, x, targets), rtol=1e-6, what="epsilon-LRP vs Captum")


def test_captum_max_pool_differs_by_its_epsilon_share():
    """Captum's max-pool epsilon rule scales the relevance at each max-pool's output by
    z / (z + eps sign z): rebuilt on minicnn's winner-take-all map, pool by pool, it is Captum's."""
    net = vgg_with(False, seed=2)
    x = np.random.default_rng(3).standard_normal((2, 3, 16, 16))
    targets = [0, 3]
    eps = 0.5
    theirs = captum_lrp(net, x, targets, maxpool_eps=eps)
    rec = net.run(x)
    scores = rec.output()
    r = np.zeros_like(scores)
    r[np.arange(2), targets] = scores[np.arange(2), targets]
    start = None
    for pool in ("pool2", "pool1"):  # top down: scale the relevance arriving at each max-pool
        r = rec.backward(r, mode=CAPTUM_COMPOSITE, start=start, stop=pool)
        z = rec.output(pool)
        r = r * z / (z + eps * np.where(z >= 0, 1.0, -1.0))
        start = pool
    rebuilt = rec.backward(r, mode=CAPTUM_COMPOSITE, start=start)
    assert_close(rebuilt, theirs, rtol=1e-6, what="winner-take-all scaled by Captum's max-pool share")
    plain = mc.lrp(net, x, target=targets, composite=CAPTUM_COMPOSITE)
    assert np.abs(plain - theirs).max() > 1e-3 * np.abs(theirs).max()  # the scaling is visible
