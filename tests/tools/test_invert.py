"""Feature inversion (Mahendran & Vedaldi 2015): the loss and its gradient vs PyTorch autograd, the
penalties, and the relative feature error reached on the shipped digit model, per layer.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import assert_close, biased, oracle
from torch_mirror import to_torch

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.io.preprocess import CONVENTIONS
from minicnn.tools.invert import PIXEL_RANGE
from minicnn.tools.penalties import AlphaNorm, TotalVariation


def torch_alpha(t, ref, alpha, scale):
    return ((t - ref).abs() / scale).pow(alpha).sum(dim=(1, 2, 3)) / t[0].numel()


def torch_tv(t, beta, scale, eps=0.0):
    dw = t[:, :, :-1, 1:] - t[:, :, :-1, :-1]
    dh = t[:, :, 1:, :-1] - t[:, :, :-1, :-1]
    d2 = dw * dw + dh * dh + eps
    return d2.pow(beta / 2).sum(dim=(1, 2, 3)) / (t[0].numel() * (scale / 6.5) ** beta)


def test_pixel_range_covers_every_convention():
    """One B per convention of io.preprocess.CONVENTIONS, with the values it had before."""
    assert tuple(PIXEL_RANGE) == CONVENTIONS
    assert PIXEL_RANGE == {"caffe": 80.0, "torch": 80.0 / (255.0 * 0.226), "unit": 1.0, "none": 80.0}


@pytest.mark.parametrize("alpha, scale", [(6.0, 1.0), (2.0, 80.0), (3.5, 0.5)])
def test_alpha_norm_gradient(alpha, scale):
    torch = oracle("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 6)) * scale
    ref = np.random.default_rng(1).standard_normal((3, 5, 6)) * scale * 0.1
    value, grad = AlphaNorm(alpha=alpha, scale=scale).penalty(x, ref)
    t = torch.tensor(x, requires_grad=True)
    v = torch_alpha(t, torch.tensor(ref), alpha, scale)
    (g,) = torch.autograd.grad(v.sum(), t)
    assert_close(value, v.detach().numpy(), rtol=1e-10)
    assert_close(grad, g.numpy(), rtol=1e-10)


@pytest.mark.parametrize("beta, scale", [(2.0, 1.0), (1.0, 80.0), (1.5, 2.0)])
def test_total_variation_gradient(beta, scale):
    torch = oracle("torch")
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 6)) * scale
    value, grad = TotalVariation(beta=beta, scale=scale).penalty(x, 0)
    t = torch.tensor(x, requires_grad=True)
    v = torch_tv(t, beta, scale, eps=0.0 if beta == 2 else 1e-12)
    (g,) = torch.autograd.grad(v.sum(), t)
    assert_close(value, v.detach().numpy(), rtol=1e-8)
    assert_close(grad, g.numpy(), rtol=1e-8)


@pytest.mark.parametrize("layer", ["relu_1", "maxpool2d_1", "dense_0"])
def test_loss_and_first_step_match_autograd(make_small_vgg, layer):
    """history[0] is the full loss at the start and the first SGD step is -lr * its gradient."""
    torch = oracle("torch")
    net = biased(make_small_vgg(seed=7))
    x = np.random.default_rng(4).standard_normal((2, 3, 16, 16))
    wa, wt, lr = 0.3, 0.2, 0.7
    result = mc.invert(
        net, x, layer, steps=1, lr=lr, alpha_weight=wa, tv_weight=wt, scale=1.0, optimizer="sgd", seed=1
    )
    x0 = result.info["start"]
    model = to_torch(net)[: net.index(layer) + 1]
    phi0 = model(torch.tensor(x))
    t = torch.tensor(x0, requires_grad=True)
    data = ((model(t) - phi0) ** 2).flatten(1).sum(1) / (phi0**2).flatten(1).sum(1)
    loss = data + wa * torch_alpha(t, 0.0, 6.0, 1.0) + wt * torch_tv(t, 2.0, 1.0)
    (g,) = torch.autograd.grad(loss.sum(), t)
    assert_close(result.history[:, 0], loss.detach().numpy(), rtol=1e-7)
    assert_close(result.info["error"][:, 0], data.detach().sqrt().numpy(), rtol=1e-7)
    assert_close(result.image - x0, -lr * g.numpy(), rtol=1e-7)


def test_error_falls_small_net(make_small_vgg):
    net = make_small_vgg(seed=8)
    x = np.random.default_rng(5).random((2, 3, 16, 16)).astype(np.float32)
    result = mc.invert(net, x, "relu_1", steps=60, seed=0, scale=1.0)
    err = result.info["error"]  # measured: 0.90 -> 0.21 (random-noise images are hard to invert)
    assert (err[:, 0] > 0.5).all() and (result.info["final_error"] < 0.3).all(), err[:, [0, -1]]


# Relative feature error ||phi(x) - phi0|| / ||phi0|| after 100 Adam steps (default settings, seed 0)
# on the first 4 held-out digits, per layer of the shipped mnist_vgg. Measured maxima (python
# benchmarks/optimisation_tools.py): block1_conv2_relu 0.014, block1_pool 0.106, block2_pool 0.339.
# Thresholds: about twice those (room for BLAS rounding and retraining, still far below the 1.0 of
# the start). The error grows with depth, as Mahendran & Vedaldi (2015, sec. 4) find: after each
# max-pool more images share a representation, and the alpha-norm and TV penalties pick the
# smoothest of them rather than the original.
# The test runs the first 2 of those digits (time), so the measured maxima bound them too.
SHIPPED_THRESHOLDS = {"block1_conv2_relu": 0.03, "block1_pool": 0.2, "block2_pool": 0.6}


def test_shipped_layers_invert_below_measured_thresholds():
    from minicnn.paths import DEFAULT_MODEL, WEIGHTS_DIR

    # the thresholds were measured from the black start; since issue 17 the shipped file stores the
    # mean digit (meta["mean_image"]), a start already nearer (error 0.84-0.95): keep the black one here
    digit_net = mc.load(DEFAULT_MODEL)
    digit_net.meta.pop("mean_image")
    held = np.load(WEIGHTS_DIR / "mnist_heldout.npz")
    x = (held["images"][:2, None] / 255.0).astype(np.float32)
    for layer, threshold in SHIPPED_THRESHOLDS.items():
        result = mc.invert(digit_net, x, layer, steps=100, seed=0)
        assert (result.info["error"][:, 0] > 0.9).all()
        assert result.info["final_error"].max() < threshold, (layer, result.info["final_error"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layer": "nope"}, "unknown layer"),
        ({"steps": 0}, "steps"),
        ({"lr": -0.5}, "lr"),
        ({"scale": 0.0}, "scale"),
        ({"optimizer": "newton"}, "optimizer"),
        ({"alpha": 0.5}, "alpha"),
        ({"beta": 0.5}, "beta"),
        ({"x": np.zeros((1, 3, 2, 2), np.float32)}, "smaller"),
        ({"x": np.full((1, 3, 16, 16), np.nan, np.float32)}, "NaN"),
    ],
)
def test_bad_input(make_small_vgg, kwargs, message):
    args = {"x": np.ones((1, 3, 16, 16), np.float32), "layer": "relu_1", **kwargs}
    with pytest.raises(MinicnnError, match=message):
        mc.invert(make_small_vgg(seed=0), **args)


def test_zero_representation_is_an_error(make_small_vgg):
    net = make_small_vgg(seed=0)
    for layer in net.layers:
        if layer.has_params:
            layer.weight = layer.weight * 0
    with pytest.raises(MinicnnError, match="all zeros"):
        mc.invert(net, np.ones((1, 3, 16, 16), np.float32), "relu_0")


def test_record_of_the_callers_forward_gives_the_same_result(make_small_vgg):
    """record= (a full forward over the same x) replaces the first forward, not the result."""
    net = biased(make_small_vgg(seed=7))
    x = np.random.default_rng(4).standard_normal((2, 3, 16, 16))
    alone = mc.invert(net, x, "relu_1", steps=3, seed=1)
    given = mc.invert(net, x, "relu_1", steps=3, seed=1, record=net.run(x))
    assert_close(given.image, alone.image, rtol=0)
    assert_close(given.history, alone.history, rtol=0)
    with pytest.raises(MinicnnError, match="same x"):
        mc.invert(net, x, "relu_1", steps=1, record=net.run(x.copy()))


def test_one_seed_fixes_the_start_and_the_jitter(make_small_vgg):
    """The start's noise and the Jitter shifts come from one stream named by the seed."""
    from minicnn.tools.modifiers import Jitter

    net = make_small_vgg(seed=7)
    x = np.random.default_rng(4).standard_normal((1, 3, 16, 16)).astype(net.dtype)
    runs = [
        mc.invert(net, x, "relu_1", steps=4, seed=s, regularizers=(Jitter(2),), progress=False).image
        for s in (1, 1, 2)
    ]
    assert np.array_equal(runs[0], runs[1]) and not np.allclose(runs[0], runs[2])
