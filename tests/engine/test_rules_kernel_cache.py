"""Rules that modify weights (z+, alpha-beta, gamma, w^2, flat) keep nothing: their weights are built
for one backward pass and never enter a layer's kept transformed kernels (Winograd's U is keyed by
the layer's own weights, minicnn/kernels/kernel_cache.py), so repeated LRP maps hold no more memory
than the first, and the gradient afterwards still finds the layer's own U."""

from __future__ import annotations

import numpy as np

import minicnn as mc


def winograd_net():
    """3x3 stride-1 convolutions that insist on the CPU's Winograd lowerings (whatever "auto" picks)."""
    layers = [
        mc.Conv2D(3, 16, 3, padding=1, algorithm="winograd"), mc.ReLU(),
        mc.Conv2D(16, 32, 3, padding=1, algorithm="winograd4"), mc.ReLU(),
        mc.Conv2D(32, 32, 3, padding=1, algorithm="winograd4"), mc.ReLU(),
        mc.GlobalAvgPool2D(), mc.Dense(32, 4),
    ]  # fmt: skip
    return mc.Sequential(layers, seed=0)


def counting(monkeypatch):
    """Count Winograd kernel transforms as they run, by lowering (the list they are appended to)."""
    from minicnn.kernels import winograd, winograd_f4

    calls = []
    for module, name in ((winograd, "winograd"), (winograd_f4, "winograd4")):
        real = module.transform_kernel
        monkeypatch.setattr(
            module, "transform_kernel", lambda w, real=real, name=name: calls.append(name) or real(w)
        )
    return calls


def test_modified_weights_never_replace_the_kept_kernels(monkeypatch):
    """After a gradient pass has kept each layer's U, LRP maps with modified weights build their
    own U once per use (kept nowhere), and the next gradient pass builds none: its U was not evicted."""
    net = winograd_net()
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    calls = counting(monkeypatch)
    mc.saliency(net, x, target=0, signed=True)
    assert calls, "the net must take a Winograd lowering for this test to mean anything"
    for composite in ("epsilon-alpha2-beta1", "gamma", "epsilon-plus-flat", "epsilon"):
        calls.clear()
        mc.lrp(net, x, target=0, composite=composite)
        if composite == "epsilon":
            assert calls == []  # the layers' own weights: their kept U
        calls.clear()
        mc.saliency(net, x, target=0, signed=True)
        assert calls == [], f"after {composite}: the gradient rebuilt {calls}"


def test_gradient_after_lrp_uses_the_layers_own_weights():
    net = winograd_net()
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    before = mc.saliency(net, x, target=1, signed=True)
    mc.lrp(net, x, target=1, composite="zplus")
    after = mc.saliency(net, x, target=1, signed=True)
    np.testing.assert_array_equal(after, before)
