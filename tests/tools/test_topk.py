"""Top-k DeconvNet projections (Zeiler & Fergus 2013): the top-k equal a brute-force scan, each
projection equals mc.reconstruct for that unit on that image, receptive fields equal the support of
a PyTorch gradient, and folders (with an unreadable file) give the same answer as arrays.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import oracle

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.tools.topk import receptive_field


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(0).random((23, 3, 16, 16)).astype(np.float32)


def brute_force(net, x, layer, k):
    """Per channel: (values, indices) of the k images with the largest max over positions."""
    a = np.concatenate([net.forward(x[i : i + 1], stop=layer) for i in range(len(x))])
    best = a.reshape(len(x), a.shape[1], -1).max(axis=2)  # (N, C)
    order = np.argsort(-best, axis=0, kind="stable")[:k].T  # (C, k)
    return np.take_along_axis(best.T, order, axis=1), order


@pytest.mark.parametrize("layer, batch", [("relu_1", 5), ("maxpool2d_1", 23), ("dense_0", 4)])
def test_topk_equals_brute_force(make_small_vgg, data, layer, batch):
    net = make_small_vgg(seed=1).astype(np.float64)  # batch-size independent rounding
    data = data.astype(np.float64)
    result = mc.topk(net, data, layer, k=6, batch_size=batch)
    values, index = brute_force(net, data, layer, 6)
    assert np.allclose(result.values, values, rtol=1e-12)
    assert np.array_equal(result.index, index)
    assert (np.array([len(set(row)) for row in result.index]) == 6).all()  # distinct images


@pytest.mark.parametrize("mode", ["deconvnet", "guided", "gradient"])
def test_projection_is_reconstruct_inside_the_box(make_small_vgg, data, mode):
    net = make_small_vgg(seed=2)
    layer = "relu_2"
    result = mc.topk(net, data, layer, k=3, mode=mode, channels=[0, 5], batch_size=4)
    for row, c in enumerate(result.channels):
        for q in range(3):
            img = data[result.index[row, q]][None]
            y, x = (int(v) for v in result.position[row, q])
            a = net.forward(img, stop=layer)
            assert np.isclose(a[0, c, y, x], result.values[row, q])  # the strongest unit of map c
            full = mc.reconstruct(net, img, layer, unit=(int(c), y, x), mode=mode)[0]
            x0, y0, x1, y1 = result.boxes[row, q]
            pad = 16
            padded = np.pad(full, ((0, 0), (pad, pad), (pad, pad)))
            crop = padded[:, y0 + pad : y1 + pad, x0 + pad : x1 + pad]
            assert np.allclose(result.projections[row, q], crop, atol=1e-6)
            assert np.isclose(np.abs(crop).sum(), np.abs(full).sum(), rtol=1e-5)  # zero outside
            img_pad = np.pad(img[0], ((0, 0), (pad, pad), (pad, pad)))
            patch = img_pad[:, y0 + pad : y1 + pad, x0 + pad : x1 + pad]
            assert np.array_equal(result.patches[row, q], patch)


def support_box(torch, net, layer, unit, shape):
    """Bounding box (x0, y0, x1, y1) of the input pixels that reach ``unit`` of ``layer``:
    the support of d unit / d input in a linear twin of the net (ReLU -> identity, max-pool ->
    average pool of the same window: both keep the receptive field), weights all positive."""
    nn = torch.nn
    mods = []
    for lay in net.layers[: net.index(layer) + 1]:
        if lay.kind == "Conv2D":
            conv = nn.Conv2d(lay.in_channels, lay.out_channels, lay.kernel_size, lay.stride, lay.padding)
            nn.init.constant_(conv.weight, 1.0)
            mods.append(conv)
        elif lay.kind == "MaxPool2D":
            mods.append(nn.AvgPool2d(lay.kernel_size, lay.stride))
    x = torch.ones(1, *shape, dtype=torch.float64, requires_grad=True)
    out = nn.Sequential(*mods).double()(x)
    (g,) = torch.autograd.grad(out[(0, *unit)], x)
    ys, xs = np.nonzero(g[0].abs().sum(0).numpy())
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def test_receptive_field_is_the_gradient_support():
    torch = oracle("torch")
    net = mc.Sequential(
        [
            mc.Conv2D(1, 2, 3, padding=1),
            mc.ReLU(),
            mc.MaxPool2D(2),
            mc.Conv2D(2, 2, 5, stride=2, padding=2),
            mc.ReLU(),
            mc.MaxPool2D(3, stride=2),
            mc.Conv2D(2, 2, 3),
        ]  # fmt: skip
    )
    shape = (1, 40, 40)
    (rh, rw), (jh, jw), (oh, ow) = receptive_field(net, "conv2d_2")
    out = net.shapes(shape)[-1]
    for y in range(out[1]):
        for x in range(out[2]):
            x0, y0 = ow + x * jw, oh + y * jh
            box = (max(x0, 0), max(y0, 0), min(x0 + rw, 40), min(y0 + rh, 40))
            assert box == support_box(torch, net, "conv2d_2", (0, y, x), shape), (y, x)
    assert receptive_field(net, "relu_0") == ((3, 3), (1, 1), (-1, -1))


def test_folder_with_an_unreadable_image(make_small_vgg, tmp_path):
    from PIL import Image

    net = make_small_vgg(seed=3, channels=1)
    net.meta["preprocess"] = "unit"
    pixels = np.random.default_rng(1).integers(0, 256, (7, 16, 16), dtype=np.uint8)
    for i, img in enumerate(pixels):
        Image.fromarray(img).save(tmp_path / f"img{i}.png")
    (tmp_path / "img3b.png").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="img3b.png"):
        result = mc.topk(net, tmp_path, "relu_2", k=3, batch_size=3)
    names = [p.name for p in result.files]
    array = mc.topk(net, (pixels[:, None] / 255.0).astype(np.float32), "relu_2", k=3)
    assert np.allclose(result.values, array.values, rtol=1e-6)
    assert [[names[i] for i in row] for row in result.index] == [
        [f"img{i}.png" for i in row] for row in array.index
    ]
    assert np.allclose(result.projections, array.projections, atol=1e-6)


def test_fewer_images_than_k(make_small_vgg, data):
    result = mc.topk(make_small_vgg(seed=0), data[:2], "relu_1", k=4)
    assert (result.index[:, 2:] == -1).all() and np.isinf(result.values[:, 2:]).all()
    assert (result.projections[:, 2:] == 0).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 0}, "k must"),
        ({"layer": "nope"}, "unknown layer"),
        ({"channels": [9]}, "out of range"),
        ({"mode": "backprop"}, "mode"),
        ({"batch_size": 0}, "batch_size"),
        ({"images": np.zeros((0, 3, 16, 16), np.float32)}, "empty"),
        ({"images": np.ones((2, 3, 16, 16), np.complex64)}, "real-valued images"),
        ({"images": np.zeros((2, 3, 3, 3), np.float32)}, "smaller"),
    ],
)
def test_bad_input(make_small_vgg, data, kwargs, message):
    args = {"images": data, "layer": "relu_2", **kwargs}
    with pytest.raises(MinicnnError, match=message):
        mc.topk(make_small_vgg(seed=0), **args)


def test_empty_folder(make_small_vgg, tmp_path):
    with pytest.raises(MinicnnError, match="no images"):
        mc.topk(make_small_vgg(seed=0), tmp_path, "relu_2")
