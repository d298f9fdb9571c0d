"""Float64 central finite differences for every layer's dx, dW and db.

The loss is L = <layer(x), g> for a fixed random g, so dL/dx = layer.backward(g). Inputs are kept away
from the points where the function is not differentiable: ReLU inputs are at least 0.1 from zero, and
max-pool inputs are a permutation of well separated values, so no perturbation changes a switch.
"""

import numpy as np
import pytest
from support import assert_close

import minicnn as mc

EPS = 1e-6


def numeric_grad(f, array, indices):
    """Central differences of scalar f() w.r.t. array[idx] for each idx, perturbing in place."""
    out = []
    for idx in indices:
        old = array[idx]
        array[idx] = old + EPS
        up = f()
        array[idx] = old - EPS
        down = f()
        array[idx] = old
        out.append((up - down) / (2 * EPS))
    return np.array(out)


def sample_indices(shape, rng, count=25):
    flat = rng.choice(int(np.prod(shape)), size=min(count, int(np.prod(shape))), replace=False)
    return [np.unravel_index(i, shape) for i in flat]


def check_layer(layer, x, rng, params=True):
    layer.init_params(rng, np.float64) if layer.has_params else None
    y, cache = layer.forward(x)
    g = rng.standard_normal(y.shape)
    dx, grads = layer.backward(g, cache, need_params=params and layer.has_params)

    def loss():
        return float((layer.forward(x)[0] * g).sum())

    idx = sample_indices(x.shape, rng)
    assert_close([dx[i] for i in idx], numeric_grad(loss, x, idx), 1e-6, "dx", atol=1e-8, elementwise=True)
    if params and layer.has_params:
        for key in ("weight", "bias"):
            p = getattr(layer, key)
            idx = sample_indices(p.shape, rng)
            assert_close(
                [grads[key][i] for i in idx],
                numeric_grad(loss, p, idx),
                1e-6,
                key,
                atol=1e-8,
                elementwise=True,
            )


@pytest.mark.parametrize(
    "n,c,h,w,o,k,s,p",
    [
        (2, 3, 7, 6, 4, 3, 1, 1),
        (1, 2, 9, 9, 3, 3, 2, 0),
        (2, 4, 8, 5, 2, 1, 1, 0),
        (1, 3, 10, 10, 5, 5, 3, 2),
    ],
)
def test_conv2d(n, c, h, w, o, k, s, p):
    rng = np.random.default_rng(0)
    check_layer(mc.Conv2D(c, o, k, stride=s, padding=p), rng.standard_normal((n, c, h, w)), rng)


def test_dense():
    rng = np.random.default_rng(1)
    check_layer(mc.Dense(7, 5), rng.standard_normal((3, 7)), rng)


def test_relu_away_from_kink():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 5))
    x += np.sign(x) * 0.1
    check_layer(mc.ReLU(), x, rng)


@pytest.mark.parametrize("k,s", [(2, 2), (3, 2), (2, 1)])
def test_maxpool_without_ties(k, s):
    rng = np.random.default_rng(3)
    shape = (2, 3, 7, 8)
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) * 0.01
    check_layer(mc.MaxPool2D(k, stride=s), x, rng)


@pytest.mark.parametrize(
    "layer,shape",
    [
        (mc.Flatten(), (2, 3, 4, 5)),
        (mc.GlobalAvgPool2D(), (2, 3, 4, 5)),
        (mc.Softmax(), (3, 6)),
        (mc.Dropout(0.5), (2, 8)),
    ],
)
def test_parameter_free_layers(layer, shape):
    rng = np.random.default_rng(4)
    check_layer(layer, rng.standard_normal(shape), rng)


def test_dropout_training_is_scaled_mask():
    rng = np.random.default_rng(5)
    x = np.ones((1000, 10))
    y, mask = mc.Dropout(0.25).forward(x, train=True, rng=rng)
    kept = y != 0
    assert_close(kept.mean(), 0.75, 0, "kept fraction", atol=0.02)
    assert_close(y[kept], 1 / 0.75, 1e-7, "kept units", elementwise=True)
    dx, _ = mc.Dropout(0.25).backward(np.ones_like(x), mask)
    np.testing.assert_array_equal(dx, y)  # backward scales by the same mask


def test_network_parameter_gradients():
    """Sequential's need_params path against finite differences on a whole (tiny) network."""
    rng = np.random.default_rng(6)
    net = mc.Sequential(
        [
            mc.Conv2D(2, 3, 3, padding=1),
            mc.ReLU(),
            mc.MaxPool2D(2),
            mc.Flatten(),
            mc.Dense(3 * 3 * 3, 4),
        ],
        seed=1,
    ).astype(np.float64)
    x = rng.standard_normal((2, 2, 6, 6))
    g = rng.standard_normal((2, 4))
    net.forward(x)
    dx = net.backward(g, need_params=True)

    def loss():
        return float((net.forward(x) * g).sum())

    for name in ("conv2d_0", "dense_0"):
        w = net[name].weight
        idx = sample_indices(w.shape, rng, 10)
        assert_close(
            [net.grads[name]["weight"][i] for i in idx],
            numeric_grad(loss, w, idx),
            1e-5,
            f"{name}.weight",
            atol=1e-8,
            elementwise=True,
        )
    idx = sample_indices(x.shape, rng, 10)
    assert_close([dx[i] for i in idx], numeric_grad(loss, x, idx), 1e-5, "dx", atol=1e-8, elementwise=True)
