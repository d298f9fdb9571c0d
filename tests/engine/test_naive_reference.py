"""Conv2D and MaxPool2D against the naive nested loops of tests/naive.py, in float64 (the third oracle).

Both of minicnn's convolution lowerings are compared, im2col everywhere and Winograd F(2x2, 3x3)
where it applies (3x3, stride 1, padding <= 2; with 16+ channels, where ``auto`` chooses it too),
forward and backward: dx alone (Winograd's transposed convolution) and dx, dw, db together (which
always go through im2col). Max-pooling is compared with non-overlapping, overlapping and
stride > kernel windows, on inputs with and without ties, switches included.

The first tests check the reference itself: worked examples by hand, and its backward against its own
forward, so that an agreement below cannot come from a reference that computes nothing.
The loops are slow: shapes stay small so the file runs in seconds.
"""

import naive
import numpy as np
import pytest
from support import assert_close

import minicnn as mc

RTOL = 1e-12  # float64; both lowerings agree with the loops to ~1e-15 of the largest magnitude


# -- the reference itself ---------------------------------------------------------------------------
def test_naive_conv_worked_by_hand():
    """3x3 input 1..9, 2x2 kernel [[1, 2], [3, 4]], bias 0.5: once without padding, once with
    padding 1 and stride 2 (where most taps read padding zeros)."""
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    b = np.array([0.5])
    # e.g. y[0, 0] = 1*1 + 2*2 + 3*4 + 4*5
    assert naive.conv2d_forward(x, w, b, 1, 0)[0, 0].tolist() == [[37.5, 47.5], [67.5, 77.5]]
    # windows at rows/cols (-1, 0) and (1, 2): y[0, 1] = 3*2 + 4*3, y[1, 0] = 2*4 + 4*7
    assert naive.conv2d_forward(x, w, b, 2, 1)[0, 0].tolist() == [[4.5, 18.5], [36.5, 77.5]]


def test_naive_conv_depends_on_each_weight():
    """The reference output is not zero, and bumping one weight w[o, c, u, v] changes output channel
    o and no other; bumping a bias shifts its channel by exactly that much."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    y = naive.conv2d_forward(x, w, b, 2, 1)
    assert np.abs(y).min() > 0
    bumped = w.copy()
    bumped[2, 1, 0, 1] += 1.0
    change = naive.conv2d_forward(x, bumped, b, 2, 1) - y
    assert np.abs(change[:, 2]).max() > 0.1 and not change[:, [0, 1, 3]].any()
    shifted = b.copy()
    shifted[3] += 1.0
    change = naive.conv2d_forward(x, w, shifted, 2, 1) - y
    assert_close(change[:, 3], np.ones_like(change[:, 3]), RTOL, what="bias shift")
    assert not change[:, :3].any()


def test_naive_conv_backward_is_the_derivative_of_naive_forward():
    """y is linear in x and in w, so d<y, g>/dx[k] = <y(x + e_k) - y(x), g> exactly (up to rounding)
    for every element k: the naive backward against the naive forward alone, element by element."""
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((1, 2, 4, 5)), rng.standard_normal((2, 2, 3, 2)), rng.standard_normal(2)
    stride, padding = 2, 1
    y = naive.conv2d_forward(x, w, b, stride, padding)
    g = rng.standard_normal(y.shape)
    dx, dw, db = naive.conv2d_backward(g, x, w, stride, padding)

    def directional(array, index, run):
        bumped = array.copy()
        bumped[index] += 1.0
        return float(((run(bumped) - y) * g).sum())

    for name, array, grad, run in [
        ("dx", x, dx, lambda v: naive.conv2d_forward(v, w, b, stride, padding)),
        ("dw", w, dw, lambda v: naive.conv2d_forward(x, v, b, stride, padding)),
        ("db", b, db, lambda v: naive.conv2d_forward(x, w, v, stride, padding)),
    ]:
        expected = np.array([directional(array, k, run) for k in np.ndindex(array.shape)])
        assert_close(grad.ravel(), expected, 1e-12, what=name)


def test_naive_maxpool_worked_by_hand():
    # a window of equal zeros and a window of three 5s: the first maximum wins both (switch 0)
    x = np.array([[[[0.0, 0.0, 5.0, 5.0], [0.0, 0.0, 5.0, 1.0]]]])
    y, switches = naive.maxpool_forward(x, 2, 2, 2)
    assert y.tolist() == [[[[0.0, 5.0]]]] and switches.tolist() == [[[[0, 0]]]]
    dx = naive.maxpool_backward(np.ones_like(y), switches, x.shape, 2, 2)
    assert dx[0, 0].tolist() == [[1, 0, 1, 0], [0, 0, 0, 0]]
    # stride 3 > kernel 2 on 0..24: row and column 2 are read by no window; maxima bottom-right (3)
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    y, switches = naive.maxpool_forward(x, 2, 2, 3)
    assert y[0, 0].tolist() == [[6, 9], [21, 24]] and (switches == 3).all()
    dx = naive.maxpool_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), switches, x.shape, 2, 3)
    assert dx[0, 0].tolist() == [[0] * 5, [0, 1, 0, 0, 2], [0] * 5, [0] * 5, [0, 3, 0, 0, 4]]
    # overlapping 1x2 windows with stride 1 share the 5: both signals add up there
    x = np.array([[[[1.0, 5.0, 2.0]]]])
    y, switches = naive.maxpool_forward(x, 1, 2, 1)
    assert y.tolist() == [[[[5.0, 5.0]]]] and switches.tolist() == [[[[1, 0]]]]
    assert naive.maxpool_backward(np.array([[[[1.0, 2.0]]]]), switches, x.shape, 2, 1).tolist() == [
        [[[0.0, 3.0, 0.0]]]
    ]


# -- convolution ------------------------------------------------------------------------------------
def check_conv(n, c, h, w, o, kernel, stride, padding, algorithms, seed=0):
    """Every algorithm against one naive forward and backward; returns the outputs by algorithm."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    weight, bias = rng.standard_normal((o, c, *kernel)), rng.standard_normal(o)
    y_ref = naive.conv2d_forward(x, weight, bias, stride, padding)
    dy = rng.standard_normal(y_ref.shape)
    dx_ref, dw_ref, db_ref = naive.conv2d_backward(dy, x, weight, stride, padding)
    outputs = {}
    for algorithm in algorithms:
        layer = mc.Conv2D(c, o, kernel, stride=stride, padding=padding, algorithm=algorithm)
        layer.weight, layer.bias = weight.copy(), bias.copy()
        y, cache = layer.forward(x)
        assert y.dtype == np.float64
        assert_close(y, y_ref, RTOL, what=f"{algorithm} forward")
        dx, grads = layer.backward(dy, cache)
        assert grads is None
        assert_close(dx, dx_ref, RTOL, what=f"{algorithm} dx")
        dx, grads = layer.backward(dy, cache, need_params=True)
        assert_close(dx, dx_ref, RTOL, what=f"{algorithm} dx with parameter gradients")
        assert_close(grads["weight"], dw_ref, RTOL, what=f"{algorithm} dw")
        assert_close(grads["bias"], db_ref, RTOL, what=f"{algorithm} db")
        outputs[algorithm] = y
    return outputs


@pytest.mark.parametrize(
    "n,c,h,w,o,kernel,stride,padding",
    [
        (2, 3, 7, 6, 4, (3, 3), 1, 1),
        (1, 2, 9, 8, 3, (3, 3), 2, 0),
        (2, 2, 6, 7, 3, (2, 3), 2, 1),  # non-square kernel
        (1, 3, 8, 8, 2, (5, 5), 3, 2),
        (1, 2, 9, 9, 2, (1, 1), 3, 0),  # stride > kernel: inputs that no window reads (dx = 0 there)
        (1, 1, 2, 3, 2, (3, 3), 1, 2),  # input smaller than the kernel, made to fit by padding
    ],
)
def test_conv2d_im2col(n, c, h, w, o, kernel, stride, padding):
    check_conv(n, c, h, w, o, kernel, stride, padding, ["im2col"])


@pytest.mark.parametrize(
    "n,c,h,w,o,padding",
    [
        (8, 16, 6, 6, 16, 0),
        (4, 16, 5, 7, 16, 1),  # odd sizes: Winograd's 2x2 output tiles hang over the edge
        (3, 16, 4, 5, 17, 2),
    ],
)
def test_conv2d_winograd_and_im2col(n, c, h, w, o, padding, monkeypatch):
    """3x3 stride 1 with 16+ channels: Winograd (forced and chosen by auto: batches with at least
    WINOGRAD_MIN_TILES tiles, the work rule off for these small layers) and im2col."""
    from minicnn.kernels import conv as conv_kernels

    monkeypatch.setattr(conv_kernels, "WINOGRAD_MIN_WORK", 0)
    outputs = check_conv(n, c, h, w, o, (3, 3), 1, padding, ["winograd", "auto", "im2col"])
    # the lowerings round differently, so equal outputs would mean one of them did not run
    assert np.array_equal(outputs["auto"], outputs["winograd"])
    assert not np.array_equal(outputs["winograd"], outputs["im2col"])


# -- max-pooling ------------------------------------------------------------------------------------
def tied_windows(x, kh, kw, stride):
    """How many pooling windows hold their maximum more than once."""
    y, _ = naive.maxpool_forward(x, kh, kw, stride)
    count = 0
    for n, c, i, j in np.ndindex(y.shape):
        window = x[n, c, i * stride : i * stride + kh, j * stride : j * stride + kw]
        count += int((window == y[n, c, i, j]).sum() > 1)
    return count


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize(
    "shape,kernel,stride",
    [
        ((2, 3, 6, 6), (2, 2), None),  # stride = kernel
        ((1, 2, 7, 9), (2, 2), 2),  # VGG's 2x2 / 2 with odd sides: a last row and column no window reads
        ((1, 2, 7, 8), (3, 3), 2),  # overlapping windows
        ((2, 2, 5, 6), (2, 2), 1),  # overlapping, every input in up to four windows
        ((1, 2, 9, 10), (2, 2), 3),  # stride > kernel: rows and columns no window reads
        ((1, 2, 7, 9), (2, 3), 2),  # non-square window
    ],
)
def test_maxpool(shape, kernel, stride, ties):
    rng = np.random.default_rng(sum(shape) + 7 * ties)
    # three values only: ties in most windows, all-equal windows among them
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    kh, kw = kernel
    s = kh if stride is None else stride
    assert (tied_windows(x, kh, kw, s) > 0) == ties
    y_ref, switches_ref = naive.maxpool_forward(x, kh, kw, s)
    layer = mc.MaxPool2D(kernel, stride=stride)
    y, cache = layer.forward(x)
    assert_close(y, y_ref, RTOL, what="forward")
    np.testing.assert_array_equal(cache.switches, switches_ref)  # integers: exactly
    dy = rng.standard_normal(y.shape)
    dx, _ = layer.backward(dy, cache)
    assert_close(dx, naive.maxpool_backward(dy, switches_ref, shape, kw, s), RTOL, what="backward")


def test_vgg_pool_backward_writes_every_input():
    """The 2x2 / 2 backward fills dx itself (np.empty, not zeros): started from NaN everywhere, it must
    still give the naive result, zeros included (odd sides: the last row and column)."""
    from minicnn.kernels.maxpool import _maxpool2_backward_cpu

    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, (2, 3, 7, 9)).astype(np.float64)  # ties in most windows
    y_ref, switches = naive.maxpool_forward(x, 2, 2, 2)
    dy = rng.standard_normal(y_ref.shape)
    dx = np.full(x.shape, np.nan)
    _maxpool2_backward_cpu(dy, switches.astype(np.int32), dx)
    np.testing.assert_array_equal(dx, naive.maxpool_backward(dy, switches, x.shape, 2, 2))
