"""The pointwise lowering of 1x1 convolutions (minicnn/kernels/pointwise.py) against naive loops
(tests/naive.py) and torch autograd, float64 to 1e-12: forward, input gradient, weight and bias
gradients, stride 1 and 2 (odd sizes, where the last row and column are never read), batches of one
and several images (the stack split between threads), and large enough to be split at all.
"""

import naive
import numpy as np
import pytest
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.kernels import gemm
from minicnn.kernels.conv import choose_lowering, conv2d_backward, conv2d_forward

SMALL = [  # n, c, h, w, o, stride
    (1, 3, 5, 7, 4, 1),
    (2, 5, 7, 9, 3, 2),
    (3, 4, 6, 5, 6, 2),
    (1, 6, 9, 9, 2, 3),
]
SPLIT = [  # over gemm.MIN_SPLIT_WORK: the products are split between threads (too big for the loops)
    (1, 64, 56, 56, 128, 1),  # one image, split by columns
    (4, 32, 28, 28, 64, 1),  # a stack of images split between threads
    (3, 64, 29, 27, 96, 2),  # subsampled, split
]
SHAPES = SMALL + SPLIT


def _case(n, c, h, w, o, stride, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    k, b = rng.standard_normal((o, c, 1, 1)), rng.standard_normal(o)
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    return x, k, b, rng.standard_normal((n, o, ho, wo))


@pytest.mark.parametrize("n,c,h,w,o,stride", SMALL + [(2, 16, 9, 11, 24, 2)])
def test_against_naive_loops(n, c, h, w, o, stride):
    x, k, b, dy = _case(n, c, h, w, o, stride)
    assert choose_lowering(x, k, stride, 0, "auto") == "pointwise"
    y, cache = conv2d_forward(x, k, b, stride, 0)
    assert_close(y, naive.conv2d_forward(x, k, b, stride, 0), 1e-12, what="forward")
    dx_ref, dw_ref, db_ref = naive.conv2d_backward(dy, x, k, stride, 0)
    dx, dw, db = conv2d_backward(dy, cache, k, stride, 0)
    assert dw is None and db is None
    assert_close(dx, dx_ref, 1e-12, what="dx")
    dx, dw, db = conv2d_backward(dy, cache, k, stride, 0, need_params=True)
    assert_close(dx, dx_ref, 1e-12, what="dx with parameter gradients")
    assert_close(dw, dw_ref, 1e-12, what="dw")
    assert_close(db, db_ref, 1e-12, what="db")
    if stride > 1:  # pixels no output reads get exactly zero gradient
        read = np.zeros(x.shape, bool)
        read[:, :, ::stride, ::stride] = True
        assert np.all(dx[~read] == 0) and np.all(dx[read] != 0)


@pytest.mark.parametrize("n,c,h,w,o,stride", SHAPES)
def test_against_torch_autograd(n, c, h, w, o, stride):
    torch = oracle("torch")
    x, k, b, dy = _case(n, c, h, w, o, stride, seed=1)
    xt, kt, bt = (torch.tensor(a, requires_grad=True) for a in (x, k, b))
    yt = torch.nn.functional.conv2d(xt, kt, bt, stride=stride)
    yt.backward(torch.tensor(dy))
    layer = mc.Conv2D(c, o, 1, stride=stride)
    layer.weight, layer.bias = k.copy(), b.copy()
    y, cache = layer.forward(x)
    assert_close(y, yt.detach().numpy(), 1e-12, what="forward")
    dx, grads = layer.backward(dy, cache, need_params=True)
    assert_close(dx, xt.grad.numpy(), 1e-12, what="dx")
    assert_close(grads["weight"], kt.grad.numpy(), 1e-12, what="dw")
    assert_close(grads["bias"], bt.grad.numpy(), 1e-12, what="db")


def test_float32_equals_im2col():
    """In float32 the products are im2col's own (the same columns, one BLAS call per image part): the
    two lowerings agree to float32 rounding."""
    x, k, b, dy = (a.astype(np.float32) for a in _case(2, 64, 28, 28, 96, 1, seed=2))
    for stride in (1, 2):
        dy_s = dy[:, :, : (28 - 1) // stride + 1, : (28 - 1) // stride + 1].copy()
        ours, cache = conv2d_forward(x, k, b, stride, 0, algorithm="pointwise")
        theirs, cache2 = conv2d_forward(x, k, b, stride, 0, algorithm="im2col")
        assert ours.dtype == np.float32
        assert_close(ours, theirs, 1e-6, what=f"stride {stride} forward")
        got = conv2d_backward(dy_s, cache, k, stride, 0, need_params=True, algorithm="pointwise")
        want = conv2d_backward(dy_s, cache2, k, stride, 0, need_params=True, algorithm="im2col")
        for a, e, what in zip(got, want, ("dx", "dw", "db")):
            assert a.dtype == np.float32
            assert_close(a, e, 1e-5, what=f"stride {stride} {what}")


def test_chosen_only_where_it_fits():
    x = np.zeros((1, 8, 6, 6), np.float32)
    assert choose_lowering(x, np.zeros((4, 8, 1, 1)), 2, 0, "auto") == "pointwise"
    assert choose_lowering(x, np.zeros((4, 8, 1, 1)), 1, 1, "auto") == "im2col"  # padding: a zero border
    assert choose_lowering(x, np.zeros((4, 8, 3, 3)), 2, 1, "auto") == "im2col"
    with pytest.raises(
        MinicnnError, match="the pointwise lowering needs a 1x1 kernel and padding 0; got 3x3"
    ):
        choose_lowering(x, np.zeros((4, 8, 3, 3)), 1, 0, "pointwise")
    with pytest.raises(MinicnnError, match="got 1x1, padding 1"):
        mc.Sequential([mc.Conv2D(8, 4, 1, padding=1, algorithm="pointwise")], seed=0).forward(x)


def test_shared_matrix_against_a_stack():
    """gemm.matmul with a 2-D a shared by a stack b (B, K, N) and a bias: np.matmul's result plus the
    bias, split or not."""
    rng = np.random.default_rng(3)
    a, b, bias = rng.standard_normal((96, 64)), rng.standard_normal((5, 64, 400)), rng.standard_normal(96)
    expected = np.matmul(a, b) + bias[:, None]
    assert 96 * 64 * 400 * 5 >= gemm.MIN_SPLIT_WORK
    assert_close(gemm.matmul(a, b, bias=bias), expected, 1e-13)
    out = np.empty((1, 96, 400))
    assert_close(gemm.matmul(a, b[:1], out=out, bias=bias), expected[:1], 1e-13)
    assert_close(gemm.matmul(a, b[0, :, :7]), a @ b[0, :, :7], 1e-13)  # small: unsplit
