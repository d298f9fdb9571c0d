"""Training gradients and the SGD update against PyTorch autograd and torch.optim.SGD."""

from __future__ import annotations

import numpy as np
import pytest
from support import assert_close, oracle
from torch_mirror import to_torch

import minicnn as mc
from minicnn.train.losses import cross_entropy
from minicnn.train.optim import SGD, cosine_lr


def small_net(gap: bool, seed: int = 0):
    layers = [
        mc.Conv2D(1, 4, 3, padding=1),
        mc.ReLU(),
        mc.MaxPool2D(2),
        mc.Conv2D(4, 6, 3, stride=1),
        mc.ReLU(),
    ]
    if gap:
        layers += [mc.GlobalAvgPool2D(), mc.Dense(6, 10)]
    else:
        layers += [mc.Flatten(), mc.Dense(6 * 5 * 5, 12), mc.ReLU(), mc.Dense(12, 10)]
    net = mc.Sequential(layers, seed=seed).astype(np.float64)
    # non-zero biases, so that their gradients and updates are exercised from the first step;
    # float32-representable because to_torch copies through float32 modules
    rng = np.random.default_rng(seed + 1)
    for layer, key, value in net.parameters():
        if key == "bias":
            setattr(layer, key, rng.normal(0, 0.1, value.shape).astype(np.float32).astype(float))
    return net


def batch(seed=0, n=8, size=14):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, size, size)), rng.integers(0, 10, n)


def test_cross_entropy_matches_torch():
    torch = oracle("torch")
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(0, 5, (7, 10)), rng.integers(0, 10, 7)
    loss, grad = cross_entropy(scores, labels)
    s = torch.tensor(scores, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(s, torch.tensor(labels))
    ref.backward()
    assert abs(loss - ref.item()) <= 1e-12 * abs(ref.item())
    assert_close(grad, s.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("gap", [False, True], ids=["flatten-dense", "gap"])
def test_weight_gradients_match_torch_autograd(gap):
    torch = oracle("torch")
    net = small_net(gap)
    x, y = batch()
    _, dscores = cross_entropy(net.forward(x, train=True), y)
    dx = net.backward(dscores, need_params=True)

    model = to_torch(net)
    for p in model.parameters():
        p.requires_grad_(True)
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.cross_entropy(model(xt), torch.tensor(y)).backward()
    assert_close(dx, xt.grad.numpy(), rtol=1e-10, what="dL/dx")
    params = [m for m in model if hasattr(m, "weight")]
    layers = [la for la in net.layers if la.has_params]
    assert len(params) == len(layers)
    for layer, m in zip(layers, params):
        assert_close(net.grads[layer.name]["weight"], m.weight.grad.numpy(), 1e-10, layer.name)
        assert_close(net.grads[layer.name]["bias"], m.bias.grad.numpy(), 1e-10, layer.name)


@pytest.mark.parametrize("train_biases", [True, False])
def test_sgd_steps_match_torch_optim(train_biases):
    """Three steps of momentum SGD with weight decay on weights only, changing learning rate;
    with train_biases=False the biases are left out of the optimiser."""
    torch = oracle("torch")
    net = small_net(gap=False)
    model = to_torch(net)
    for p in model.parameters():
        p.requires_grad_(True)
    weights = [m.weight for m in model if hasattr(m, "weight")]
    biases = [m.bias for m in model if hasattr(m, "bias")]
    groups = [{"params": weights, "weight_decay": 1e-2}]
    if train_biases:
        groups.append({"params": biases, "weight_decay": 0.0})
    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    sgd = SGD(net, momentum=0.9, weight_decay=1e-2, train_biases=train_biases)
    start = [b.detach().numpy().copy() for b in biases]
    for step in range(3):
        lr = cosine_lr(step, 3, 0.1)
        x, y = batch(seed=step)
        _, dscores = cross_entropy(net.forward(x, train=True), y)
        net.backward(dscores, need_params=True)
        sgd.step(lr)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.tensor(x)), torch.tensor(y)).backward()
        opt.step()
    layers = [la for la in net.layers if la.has_params]
    for layer, w, b in zip(layers, weights, biases):
        assert_close(layer.weight, w.detach().numpy(), 1e-10, layer.name)
        assert_close(layer.bias, b.detach().numpy(), 1e-10, layer.name)
    if not train_biases:
        for layer, b0 in zip(layers, start):
            np.testing.assert_array_equal(layer.bias, b0)


def test_cosine_schedule():
    # warm-up rises linearly to the base rate, then cosine decay: half way is base / 2, the end is 0
    assert cosine_lr(0, 100, 1.0, warmup=10) == pytest.approx(0.1)
    assert cosine_lr(9, 100, 1.0, warmup=10) == pytest.approx(1.0)
    assert cosine_lr(55, 100, 1.0, warmup=10) == pytest.approx(0.5)
    assert cosine_lr(100, 100, 1.0, warmup=10) == pytest.approx(0.0)
