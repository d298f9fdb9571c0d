"""The independent DeconvNet (Zeiler & Fergus 2013, fig. 1) against the gradient path and Captum.

Each reverse stage is checked against the layer's gradient rule on random nets with every stride,
padding and overlapping pool (Simonyan et al. 2013, sec. 4: they are one operation, computed here
by two codes), against a naive loop for unpooling, and the whole reverse network against Captum's
``Deconvolution`` on the torch mirror in float64.
"""

import numpy as np
import pytest
from support import assert_close, oracle
from torch_mirror import to_torch

import minicnn as mc
from minicnn.rules import layer_backward
from minicnn.tools.deconvnet import (
    deconvnet_backward,
    filter_transposed,
    reverse_layer,
    transposed_filters,
    unpool,
)

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks")

# (conv kernel, stride, padding, pool kernel, pool stride): strides 1-3, paddings 0 to beyond k - 1,
# pools that overlap (stride < kernel), tile and skip, and sizes that leave unread rows
GEOMETRIES = [
    (3, 1, 1, 2, 2),
    (5, 2, 2, 3, 2),
    (3, 3, 0, 3, 1),
    (4, 2, 3, 2, 1),
    (1, 1, 0, 2, 2),
    (3, 2, 4, 3, 3),
    (2, 3, 1, 2, 3),
]


def random_net(k, s, p, pk, ps, size=(17, 19), seed=0):
    """conv(k, s, p) - ReLU - maxpool(pk, ps) - conv 3x3 - ReLU - flatten - dense, float64."""
    body = [
        mc.Conv2D(3, 5, k, stride=s, padding=p), mc.ReLU(), mc.MaxPool2D(pk, ps),
        mc.Conv2D(5, 4, 3, padding=1), mc.ReLU(), mc.Flatten(),
    ]  # fmt: skip
    features = int(np.prod(mc.Sequential(body).shapes((3, *size))[-1]))
    return mc.Sequential([*body, mc.Dense(features, 6)], seed=seed, dtype=np.float64)


def naive_unpool(signal, switches, shape, kernel, stride):
    """Loops: out[n, c, i*s + ky, j*s + kx] += signal[n, c, i, j] at each switch ky*kw + kx."""
    out = np.zeros(shape)
    for n, c, i, j in np.ndindex(*signal.shape):
        ky, kx = divmod(int(switches[n, c, i, j]), kernel[1])
        out[n, c, i * stride[0] + ky, j * stride[1] + kx] += signal[n, c, i, j]
    return out


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_each_stage_equals_the_gradient_rule(geometry):
    rng = np.random.default_rng(1)
    net = random_net(*geometry)
    rec = net.run(rng.standard_normal((2, 3, 17, 19)))
    signal = rng.standard_normal(rec.output().shape)
    for layer in reversed(net.layers):
        dec = reverse_layer(layer, signal, rec)
        grad, _ = layer_backward(layer, signal, rec.cache(layer.name), "gradient")
        assert dec.shape == grad.shape, layer
        if layer.is_rectifier:  # rectify the signal, not mask by the forward input
            np.testing.assert_array_equal(dec, np.maximum(signal, 0))
            assert np.abs(dec - grad).max() > 0.1
        else:
            assert_close(dec, grad, rtol=1e-12, what=f"{geometry} {layer.name}")
        signal = dec


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_unpooling_against_loops(geometry):
    _, _, _, pk, ps = geometry
    rng = np.random.default_rng(2)
    pool = mc.MaxPool2D(pk, ps)
    x = rng.standard_normal((2, 3, 11, 10))
    y, cache = pool.forward(x)
    signal = rng.standard_normal(y.shape)
    got = unpool(signal, cache.switches, x.shape, pool.window().kernel, pool.window().stride)
    assert_close(got, naive_unpool(signal, cache.switches, x.shape, (pk, pk), (ps, ps)), rtol=1e-14)
    # every signal sits at the maximum of its window: unpooled positions hold forward maxima
    assert np.isin(x[got != 0], y).all()


def test_filters_are_flipped_and_swapped():
    w = np.arange(2 * 3 * 2 * 3, dtype=np.float64).reshape(2, 3, 2, 3)
    t = transposed_filters(w)
    assert t.shape == (3, 2, 2, 3)
    for o, c, u, v in np.ndindex(*w.shape):
        assert t[c, o, 1 - u, 2 - v] == w[o, c, u, v]


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (5, 2, 2), (3, 2, 4), (2, 3, 0)])
def test_filtering_is_the_adjoint_of_the_convolution(k, s, p):
    """<conv(x), r> = <x, filter_transposed(r)>: the transposed convolution, by its definition
    (torch's conv2d is the forward, so neither side is minicnn's gradient code)."""
    torch = oracle("torch")
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 13, 12)), rng.standard_normal((4, 3, k, k))
    y = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), stride=s, padding=p).numpy()
    r = rng.standard_normal(y.shape)
    back = filter_transposed(r, w, s, p, x.shape)
    terms = np.abs(y * r).sum() + np.abs(x * back).sum()
    assert abs((y * r).sum() - (x * back).sum()) <= 1e-12 * terms


def test_whole_network_equals_captum_deconvolution(make_small_vgg):
    torch, attr = oracle("torch"), oracle("captum.attr")
    for gap in (False, True):
        net = make_small_vgg(seed=5, gap=gap).astype(np.float64)
        x = np.random.default_rng(4).standard_normal((3, 3, 16, 16))
        targets = [1, 4, 0]
        ours = mc.deconvnet(net, x, targets)
        model = to_torch(net, torch.float64)
        ref = attr.Deconvolution(model).attribute(torch.tensor(x, requires_grad=True), target=targets)
        assert_close(ours, ref.detach().numpy(), rtol=1e-12, what=f"gap={gap}")


def avgpool_net(seed, include_pad):
    """torchvision VGG's shape in small, float64: conv - ReLU - average pool (padded, fixed) - conv -
    ReLU - adaptive average pool (overlapping windows: 3 does not divide 7 or 6) - flatten - dense."""
    layers = [
        mc.Conv2D(3, 5, 3, padding=1), mc.ReLU(), mc.AvgPool2D(3, 2, 1, count_include_pad=include_pad),
        mc.Conv2D(5, 4, 3, padding=1), mc.ReLU(), mc.AdaptiveAvgPool2D((3, 2)), mc.Flatten(),
        mc.Dense(4 * 3 * 2, 6), mc.ReLU(), mc.Dropout(0.5), mc.Dense(6, 5),
    ]  # fmt: skip
    return mc.Sequential(layers, seed=seed, dtype=np.float64)


@pytest.mark.parametrize("include_pad", [True, False])
def test_average_pooling_nets(include_pad):
    """The networks the DeconvNet used to refuse ("no reverse stage for ... AvgPool2D"): every stage
    equals the gradient rule, and the whole reverse network equals Captum's Deconvolution."""
    torch, attr = oracle("torch"), oracle("captum.attr")
    net = avgpool_net(seed=2, include_pad=include_pad)
    x = np.random.default_rng(6).standard_normal((2, 3, 13, 11))
    rec = net.run(x)
    signal = np.random.default_rng(7).standard_normal(rec.output().shape)
    for layer in reversed(net.layers):
        dec = reverse_layer(layer, signal, rec)
        if not layer.is_rectifier:
            grad, _ = layer_backward(layer, signal, rec.cache(layer.name))
            assert_close(dec, grad, rtol=1e-12, what=layer.name)
        signal = dec
    ours = mc.deconvnet(net, x, [1, 4], record=rec)
    xt = torch.tensor(x, requires_grad=True)
    ref = attr.Deconvolution(to_torch(net, torch.float64)).attribute(xt, target=[1, 4])
    assert_close(ours, ref.detach().numpy(), rtol=1e-12)


def test_start_and_stop(small_net, small_images):
    net = small_net
    rec = net.run(small_images)
    name = "conv2d_2"  # the third conv: reverse from its output down to the first pool's output
    signal = np.random.default_rng(5).standard_normal(rec.output(name).shape).astype(np.float32)
    part = deconvnet_backward(net, rec, signal, start=name, stop="maxpool2d_0")
    assert part.shape == rec.output("maxpool2d_0").shape
    whole = deconvnet_backward(net, rec, signal, start=name)
    rest = deconvnet_backward(net, rec, part, start="maxpool2d_0")
    np.testing.assert_array_equal(whole, rest)
    assert_close(whole, rec.backward(signal, mode="deconvnet", start=name), rtol=1e-5)
