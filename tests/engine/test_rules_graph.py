"""LRP through a residual sum against Zennit (float64): Zennit's ResNet handling replaces the sum
by its ``Sum`` module, which takes the Norm rule (each input x_i receives x_i R / s(x_1 + x_2));
minicnn's Add reads the rule and computes the same shares, and GraphRecord adds the relevance of a
node's readers where the branches meet, as autograd does on the torch side."""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import zennit
from support import assert_close, biased, oracle

import minicnn as mc
from minicnn import rules


def residual_net():
    nodes = [
        mc.Conv2D(3, 4, 3, padding=1, name="conv1"), mc.ReLU(name="relu1"),
        (mc.Conv2D(4, 4, 3, padding=1, name="conv2"), "relu1"),
        (mc.Add(name="add"), ("relu1", "conv2")), mc.ReLU(name="relu2"),
        mc.Flatten(name="flat"), mc.Dense(4 * 8 * 8, 5, name="fc"),
    ]  # fmt: skip
    return biased(mc.Graph(nodes, seed=0), seed=3)


def torch_twin(net):
    torch = oracle("torch")
    zennit()
    from zennit.layer import Sum

    nn = torch.nn

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.relu1 = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()
            self.conv2, self.sum, self.relu2 = nn.Conv2d(4, 4, 3, padding=1), Sum(), nn.ReLU()
            self.fc = nn.Linear(4 * 8 * 8, 5)

        def forward(self, x):
            a = self.relu1(self.conv1(x))
            s = self.sum(torch.stack([a, self.conv2(a)], dim=-1))
            return self.fc(torch.flatten(self.relu2(s), 1))

    model = Residual().double().eval()
    with torch.no_grad():
        for name in ("conv1", "conv2", "fc"):
            getattr(model, name).weight.copy_(torch.from_numpy(net[name].weight))
            getattr(model, name).bias.copy_(torch.from_numpy(net[name].bias))
    return model


@pytest.mark.parametrize("name", ["epsilon", "zplus", "alpha2beta1"])
def test_residual_sum_equals_zennit(name):
    torch = oracle("torch")
    z = zennit()
    from zennit.attribution import Gradient
    from zennit.composites import LayerMapComposite
    from zennit.layer import Sum
    from zennit.types import Activation, Convolution

    rule = {
        "epsilon": z.rules.Epsilon(1e-6),
        "zplus": z.rules.ZPlus(),
        "alpha2beta1": z.rules.AlphaBeta(2.0, 1.0),
    }
    composite = LayerMapComposite(
        [
            (Activation, z.rules.Pass()),
            (Sum, z.rules.Norm()),
            (Convolution, rule[name]),
            (torch.nn.Linear, rule[name]),
        ]
    )
    net = residual_net()
    model = torch_twin(net)
    x = np.random.default_rng(4).standard_normal((2, 3, 8, 8))
    scores = net.run(x).output()
    targets = [1, 3]
    assert_close(model(torch.from_numpy(x)).detach().numpy(), scores, rtol=1e-12, what="twin forward")
    start = torch.zeros(2, 5, dtype=torch.float64)
    start[[0, 1], targets] = torch.from_numpy(scores[[0, 1], targets])
    with Gradient(model=model, composite=composite) as attributor:
        _, theirs = attributor(torch.from_numpy(x).requires_grad_(True), start)
    ours = mc.lrp(net, x, target=targets, composite=name)
    assert_close(ours, theirs.detach().numpy(), rtol=1e-6, what=f"{name} through a residual sum")


def test_sum_shares_add_up():
    """The sum's shares conserve what reaches it: without a stabiliser they add up to R exactly."""
    net = residual_net()
    x = np.random.default_rng(5).standard_normal((1, 3, 8, 8))
    rec = net.run(x)
    r = np.random.default_rng(6).standard_normal(rec.output("add").shape)
    pure = rules.Composite("z", rules.LRP0(), rules.LRP0(), stabilizer=0.0)
    mode = rules.assign(pure, rec._layers, rec)[net.names.index("add")]
    shares, _ = net["add"].backward(r, None, mode=mode)
    assert_close(shares[0] + shares[1], r, rtol=1e-12, what="shares of the sum")
    assert_close(shares[0], rec.output("relu1") * r / rec.output("add"), rtol=1e-12, what="share of x_1")
