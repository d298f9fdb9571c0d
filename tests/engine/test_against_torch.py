"""Every layer and the whole VGG16 against PyTorch autograd on the same weights."""

import numpy as np
import pytest
from support import assert_close, oracle
from torch_mirror import to_torch

import minicnn as mc


def torch_forward_backward(net, x, dy):
    """Scores, input gradient and parameter gradients of the mirrored torch model for signal dy."""
    torch = oracle("torch")
    model = to_torch(net)
    for p in model.parameters():
        p.requires_grad_(True)
    xt = torch.tensor(x, requires_grad=True)
    y = model(xt)
    y.backward(torch.tensor(dy))
    grads = {}
    for layer, module in zip(net.layers, model):
        if layer.has_params:
            grads[layer.name] = {
                "weight": module.weight.grad.numpy(),
                "bias": module.bias.grad.numpy(),
            }
    return y.detach().numpy(), xt.grad.numpy(), grads


def compare(net, x, rng, params=True):
    y = net.forward(x)
    dy = rng.standard_normal(y.shape).astype(x.dtype)
    dx = net.backward(dy, need_params=params)
    ty, tdx, tgrads = torch_forward_backward(net, x, dy)
    assert_close(y, ty, what="forward")
    assert_close(dx, tdx, what="input gradient")
    if params:
        for name, g in tgrads.items():
            for key in ("weight", "bias"):
                assert_close(net.grads[name][key], g[key], what=f"{name}.{key}")


@pytest.mark.parametrize(
    "n,c,h,w,o,k,s,p",
    [
        (1, 3, 8, 8, 4, 3, 1, 1),
        (2, 3, 9, 7, 5, 3, 2, 0),
        (3, 4, 11, 11, 6, 5, 2, 2),
        (2, 2, 6, 10, 3, 1, 1, 0),
        (1, 1, 28, 28, 8, (3, 5), 1, 0),
        (4, 6, 5, 5, 7, 3, 1, 2),
    ],
)
def test_conv2d(n, c, h, w, o, k, s, p):
    rng = np.random.default_rng(0)
    net = mc.Sequential([mc.Conv2D(c, o, k, stride=s, padding=p)], seed=0)
    net[0].bias = rng.standard_normal(o).astype(np.float32)
    compare(net, rng.standard_normal((n, c, h, w)).astype(np.float32), rng)


@pytest.mark.parametrize("params", [False, True])
@pytest.mark.parametrize("n,c,h,w,o,p", [(1, 3, 8, 8, 4, 1), (4, 6, 5, 5, 7, 2), (2, 16, 9, 7, 20, 0)])
def test_conv2d_winograd(n, c, h, w, o, p, params):
    """Winograd forward, and Winograd (dx only) or im2col (with weight gradients) backward."""
    rng = np.random.default_rng(1)
    net = mc.Sequential([mc.Conv2D(c, o, 3, padding=p, algorithm="winograd")], seed=0)
    net[0].bias = rng.standard_normal(o).astype(np.float32)
    compare(net, rng.standard_normal((n, c, h, w)).astype(np.float32), rng, params=params)


@pytest.mark.parametrize("k,s,shape", [(2, None, (2, 3, 8, 8)), (3, 2, (1, 4, 9, 7)), (2, 1, (2, 2, 5, 6))])
def test_maxpool(k, s, shape):
    rng = np.random.default_rng(1)
    compare(
        mc.Sequential([mc.MaxPool2D(k, stride=s)]),
        rng.standard_normal(shape).astype(np.float32),
        rng,
    )


@pytest.mark.parametrize(
    "layers,shape",
    [
        ([mc.ReLU()], (2, 3, 4, 4)),
        ([mc.Flatten(), mc.Dense(48, 7)], (2, 3, 4, 4)),
        ([mc.GlobalAvgPool2D(), mc.Dense(3, 5)], (2, 3, 6, 5)),
        ([mc.Flatten(), mc.Dropout(0.5), mc.Softmax()], (3, 2, 2, 2)),
    ],
)
def test_other_layers(layers, shape):
    rng = np.random.default_rng(2)
    compare(mc.Sequential(layers, seed=3), rng.standard_normal(shape).astype(np.float32), rng)


def test_small_vgg_with_parameter_gradients():
    rng = np.random.default_rng(3)
    net = mc.Sequential(
        [
            mc.Conv2D(3, 8, 3, padding=1), mc.ReLU(), mc.Conv2D(8, 8, 3, padding=1), mc.ReLU(),
            mc.MaxPool2D(2), mc.Conv2D(8, 16, 3, stride=2), mc.ReLU(), mc.Flatten(),
            mc.Dense(16 * 3 * 3, 10), mc.ReLU(), mc.Dropout(0.5), mc.Dense(10, 4),
        ],
        seed=4,
    )  # fmt: skip
    compare(net, rng.standard_normal((3, 3, 16, 16)).astype(np.float32), rng)


@pytest.fixture(scope="module")
def vgg():
    return mc.vgg16(seed=0)


def vgg_input(dtype):
    rng = np.random.default_rng(4)
    return (rng.standard_normal((1, 3, 224, 224)) * 50).astype(dtype)


def test_vgg16_scores_float32(vgg):
    y = vgg.forward(vgg_input(np.float32))
    ty, _, _ = torch_forward_backward(vgg, vgg_input(np.float32), np.zeros_like(y))
    assert_close(y, ty, what="VGG16 scores")


def test_vgg16_scores_and_input_gradient_float64(vgg):
    """The whole VGG16 at 224x224: scores and the saliency gradient of one class.

    NOTE: compared in float64. In float32 a max-pool window whose two largest inputs differ by less
    than float32 rounding (a 224x224 random input has several per pooling layer, down to 3e-8 of the
    layer's range) is a coin flip between any two implementations; the flipped switch reroutes the
    gradient over a whole receptive field. In float64 both engines agree to ~1e-15.
    """
    vgg.astype(np.float64)
    try:
        x = vgg_input(np.float64)
        y = vgg.forward(x)
        dy = np.zeros_like(y)
        dy[0, int(y.argmax())] = 1.0
        dx = vgg.backward(dy)
        ty, tdx, _ = torch_forward_backward(vgg, x, dy)
    finally:
        vgg.astype(np.float32)
    assert_close(y, ty, rtol=1e-10, what="VGG16 scores")
    assert_close(dx, tdx, rtol=1e-10, what="VGG16 input gradient")
