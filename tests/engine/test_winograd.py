"""The Winograd F(2x2, 3x3) lowering against PyTorch's convolution, a naive transform, and im2col.

Winograd is chosen automatically for 3x3 stride-1 convolutions with >= 16 channels on both sides
(VGG16 from block1_conv2 on); here it is also forced on small layers to reach every edge case: odd
sizes (tiles hanging over the edge), padding 0, 1 and 2, batches whose tiles share one GEMM.
"""

import numpy as np
import pytest
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.kernels import conv as conv_kernels
from minicnn.kernels import winograd
from minicnn.kernels.conv import WINOGRAD_MIN_CHANNELS, WINOGRAD_MIN_TILES, conv2d_backward, conv2d_forward

SHAPES = [  # n, c, h, w, o, padding
    (1, 3, 8, 8, 4, 1),
    (2, 5, 7, 9, 3, 1),
    (3, 2, 5, 8, 6, 0),
    (2, 4, 6, 5, 2, 2),
    (1, 1, 3, 3, 1, 0),
    (1, 1, 1, 1, 1, 1),
    (2, 16, 14, 14, 32, 1),
    (8, 24, 7, 7, 16, 1),
]


def torch_conv(x, k, b, padding, dy):
    """y = conv2d(x, k, b) and dx for the signal dy, by torch autograd."""
    torch = oracle("torch")
    xt = torch.tensor(x, requires_grad=True)
    y = torch.nn.functional.conv2d(xt, torch.tensor(k), torch.tensor(b), padding=padding)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("n,c,h,w,o,padding", SHAPES)
def test_against_torch(n, c, h, w, o, padding, dtype, rtol):
    rng = np.random.default_rng(c * 100 + h)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    k = rng.standard_normal((o, c, 3, 3)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    y, cache = conv2d_forward(x, k, b, 1, padding, algorithm="winograd")
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = conv2d_backward(dy, cache, k, 1, padding, algorithm="winograd")
    ty, tdx = torch_conv(x, k, b, padding, dy)
    assert y.dtype == dx.dtype == dtype and dw is None and db is None
    assert_close(y, ty, rtol=rtol, what="winograd forward")
    assert_close(dx, tdx, rtol=rtol, what="winograd input gradient")


def test_kernel_transform_is_g_w_gt():
    """U[4i+j, o, c] = (G w[o, c] G^T)[i, j], against the formula written with einsum (Lavin & Gray
    2016)."""
    g = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 4, 3, 3))
    expected = np.einsum("ia,ocab,jb->ijoc", g, w, g).reshape(16, 5, 4)
    assert_close(winograd.transform_kernel(w), expected, 0, "U", atol=1e-14)


BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)  # Lavin & Gray
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)


def test_backward_transforms_are_the_transposes():
    """One 2x2 gradient tile through output_gradient_tiles is A dY A^T; one 4x4 tile through
    input_gradient_tiles is B E B^T, both against the matrices of the paper written out here."""
    rng = np.random.default_rng(5)
    dy = rng.standard_normal((1, 1, 2, 2))
    g = np.empty((16, 1))  # 16 matrices of 1 channel x 1 tile, one per row
    winograd.output_gradient_tiles(dy, 1, 1, 0, 1, g, 1)
    assert_close(g.reshape(4, 4), AT.T @ dy[0, 0] @ AT, 1e-14, "A dY A^T")
    e = rng.standard_normal((16, 1))
    dx = np.zeros((1, 1, 4, 4))
    winograd.input_gradient_tiles(e, 0, 1, 1, 0, 1, dx, 1)
    assert_close(dx[0, 0], BT.T @ e.reshape(4, 4) @ BT, 1e-14, "B E B^T")


def test_backward_is_the_adjoint():
    """<conv(x, w), y> = <x, backward(y)> for padding 0-2, odd sizes (tiles over the edge): backward
    is the transpose of the forward computation, with the forward's own U."""
    rng = np.random.default_rng(1)
    for padding in (0, 1, 2):
        x, w = rng.standard_normal((2, 3, 6, 7)), rng.standard_normal((4, 3, 3, 3))
        u = winograd.transform_kernel(w)
        y = winograd.winograd_conv(x, u, None, padding)
        g = rng.standard_normal(y.shape)
        back = winograd.winograd_conv_adjoint(g, u, padding)
        assert back.shape == x.shape
        scale = np.abs(y).sum() * np.abs(g).max()
        assert_close((y * g).sum(), (x * back).sum(), 1e-10, f"adjoint, padding {padding}", scale=scale)


def test_float32_error_is_that_of_direct_convolution():
    """On a VGG-sized layer (256 -> 256 channels, 28x28), float32 Winograd is as close to the float64
    result as float32 im2col is (its transforms only add, subtract and halve)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 256, 28, 28))
    k = rng.standard_normal((256, 256, 3, 3)) * np.sqrt(2 / (256 * 9))
    exact, _ = conv2d_forward(x, k, np.zeros(256), 1, 1, algorithm="im2col")
    errors = {}
    for algorithm in ("im2col", "winograd"):
        y, _ = conv2d_forward(x.astype(np.float32), k.astype(np.float32), np.zeros(256, np.float32), 1, 1,
                              algorithm=algorithm)  # fmt: skip
        errors[algorithm] = np.abs(y - exact).max() / np.abs(exact).max()
    assert errors["winograd"] < 2 * errors["im2col"] + 1e-7, errors


def test_tiles_are_built_in_bounded_steps(monkeypatch):
    """A small tile budget splits the batch into many steps (some crossing images); same result."""
    rng = np.random.default_rng(3)
    x, k = rng.standard_normal((3, 4, 9, 11)), rng.standard_normal((5, 4, 3, 3))
    u = winograd.transform_kernel(k)
    dy = rng.standard_normal((3, 5, 9, 11))
    whole, whole_dx = winograd.winograd_conv(x, u, None, 1), winograd.winograd_conv_adjoint(dy, u, 1)
    monkeypatch.setattr(winograd, "WINOGRAD_TILE_ELEMENTS", 1)
    stepped, stepped_dx = winograd.winograd_conv(x, u, None, 1), winograd.winograd_conv_adjoint(dy, u, 1)
    reference, cache = conv2d_forward(x, k, np.zeros(5), 1, 1, algorithm="im2col")
    reference_dx = conv2d_backward(dy, cache, k, 1, 1, algorithm="im2col")[0]
    assert_close(stepped, whole, 0, "stepped against whole")  # bit for bit
    assert_close(stepped_dx, whole_dx, 0, "stepped against whole, backward")
    assert_close(stepped, reference, 1e-12, "stepped against im2col")
    assert_close(stepped_dx, reference_dx, 1e-12, "stepped against im2col, backward")


def test_empty_batch():
    y = winograd.winograd_conv(
        np.zeros((0, 2, 5, 5)), winograd.transform_kernel(np.ones((3, 2, 3, 3))), None, 1
    )
    assert y.shape == (0, 3, 5, 5)


def test_auto_takes_winograd_only_where_it_pays(monkeypatch):
    """auto = Winograd for 3x3 stride-1 convolutions with enough channels on both sides and enough
    tiles (a 12x12 map has 36 F(2x2) tiles, an 8x8 one 16 < WINOGRAD_MIN_TILES), else im2col; the
    weight gradient (training) always goes through im2col."""
    calls = []
    for name in ("winograd_conv", "winograd_conv_adjoint"):  # forward and backward
        real = getattr(winograd, name)
        monkeypatch.setattr(winograd, name, lambda *a, real=real: calls.append(a[1].shape) or real(*a))
    rng = np.random.default_rng(4)
    many = WINOGRAD_MIN_CHANNELS
    assert 16 < WINOGRAD_MIN_TILES <= 36
    monkeypatch.setattr(conv_kernels, "WINOGRAD_MIN_WORK", 0)  # the work rule: its own test below
    cases = [((many, many, 3, 3), 1, 12, True), ((3, many, 3, 3), 1, 12, False),
             ((many, many, 3, 3), 2, 12, False), ((many, many, 5, 5), 1, 12, False),
             ((many, many, 3, 3), 1, 8, False)]  # fmt: skip
    for shape, stride, side, expected in cases:
        calls.clear()
        k = rng.standard_normal(shape)
        x = rng.standard_normal((1, shape[1], side, side))
        y, cache = conv2d_forward(x, k, np.zeros(shape[0]), stride, 1)
        conv2d_backward(np.ones_like(y), cache, k, stride, 1)
        assert len(calls) == (2 if expected else 0), (shape, stride)
        calls.clear()
        conv2d_backward(np.ones_like(y), cache, k, stride, 1, need_params=True)
        assert not calls


def test_small_layers_take_im2col():
    """Below WINOGRAD_MIN_WORK multiply-adds auto takes im2col (no Winograd kernels to compile for
    a small network); a batch that takes the same layer over it takes Winograd."""
    from minicnn.kernels.conv import WINOGRAD_MIN_WORK, choose_lowering

    k = np.zeros((32, 32, 3, 3), np.float32)
    one = np.zeros((1, 32, 14, 14), np.float32)  # 1.8 million multiply-adds, 49 tiles
    assert 32 * 32 * 9 * 14 * 14 < WINOGRAD_MIN_WORK <= 32 * 32 * 9 * 14 * 14 * 32
    assert choose_lowering(one, k, 1, 1, "auto", cached=True) == "im2col"
    assert (
        choose_lowering(np.zeros((32, 32, 14, 14), np.float32), k, 1, 1, "auto", cached=True) == "winograd4"
    )
    assert choose_lowering(one, k, 1, 1, "winograd") == "winograd"  # insisting still works


def test_forcing_winograd_where_it_cannot_apply_is_a_clear_error():
    net = mc.Sequential([mc.Conv2D(2, 2, 3, stride=2, algorithm="winograd")], seed=0)
    with pytest.raises(MinicnnError, match="Winograd needs a 3x3 kernel, stride 1"):
        net.forward(np.zeros((1, 2, 8, 8), np.float32))
    with pytest.raises(MinicnnError, match="algorithm must be one of"):
        mc.Conv2D(2, 2, 3, algorithm="fft")
