"""A ReLU computed inside the layer before it (minicnn/fusion.py) gives the ReLU layer's bits.

The kernels (the residual sum, the bias-and-ReLU epilogue, the in-place ReLU) against NumPy's sum
and the ReLU layer's own kernel, on values that tell max(v, 0) implementations apart (-0.0, NaN,
infinities); every convolution lowering with ``rectify`` against its output rectified afterwards;
and whole passes with keep="caches" and keep="output" against keep="all": scores, kept outputs and
saliency maps equal to the bit on a VGG-style chain and on ResNet-18, the fused layers' own outputs
refused in one line."""

import numpy as np
import pytest

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.kernels import add as add_kernel
from minicnn.kernels import relu as relu_kernels
from minicnn.kernels.conv import conv2d_forward
from minicnn.tools.targets import one_hot


def vgg_style(dtype):
    """Blocks of 3x3 convolutions with ReLUs, then max-pooling, then a dense head (Simonyan &
    Zisserman 2014); the first block's convolutions on im2col, the last one's on Winograd."""
    net = mc.Sequential(
        [mc.Conv2D(3, 16, 3, padding=1, name="c1"), mc.ReLU(name="r1"),
         mc.Conv2D(16, 16, 3, padding=1, name="c2"), mc.ReLU(name="r2"), mc.MaxPool2D(2, name="p1"),
         mc.Conv2D(16, 16, 3, padding=1, name="c3", algorithm="winograd"), mc.ReLU(name="r3"),
         mc.MaxPool2D(2, name="p2"), mc.Flatten(name="flat"), mc.Dense(16 * 3 * 3, 24, name="fc1"),
         mc.ReLU(name="fc1_relu"), mc.Dense(24, 5, name="out")],
        seed=1, dtype=dtype,
    )  # fmt: skip
    x = np.random.default_rng(4).standard_normal((3, 3, 12, 12)).astype(dtype)
    return net, x


def bits(a):
    """The array's bytes as unsigned integers: equal exactly when every bit is (-0.0 != 0.0, NaN == NaN)."""
    return np.ascontiguousarray(a).view(np.uint32 if a.dtype == np.float32 else np.uint64)


def assert_same_bits(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(bits(a), bits(b))


def awkward(shape, dtype, seed=0):
    """Random values of ``shape`` with the special ones among them: -0.0, +0.0, +-inf, NaN."""
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:6] = [-0.0, 0.0, np.inf, -np.inf, np.nan, -np.nan]
    return x


# -- kernels -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [7, 3000, (1 << 20) + 5])  # the serial build and the parallel one
@pytest.mark.parametrize("count", [2, 3])
def test_add_kernel_equals_numpys_sum_in_the_same_order(dtype, size, count):
    xs = tuple(awkward((size,), dtype, seed) for seed in range(count))
    xs[1][:6] = [0.0, -0.0, 1.0, 2.0, 3.0, -np.inf]  # -0 + 0, inf + 1, -inf + -inf, NaN + ...
    before = [x.copy() for x in xs]
    expected = xs[0] + xs[1]
    for x in xs[2:]:
        expected = expected + x
    assert_same_bits(add_kernel.add(xs), expected)
    assert_same_bits(add_kernel.add(xs, rectify=True), relu_kernels.relu_forward(expected))
    for x, b in zip(xs, before):
        assert_same_bits(x, b)  # no input written


def test_add_kernel_rounds_each_sum_in_order():
    """(a + b) + c != a + (b + c) in float32 here: the kernel adds in the layer's order."""
    a, b, c = (np.array([v], np.float32) for v in (1e8, -1e8, 1.0))
    assert (a + b) + c != a + (b + c)
    assert add_kernel.add((a, b, c))[0] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_and_relu_epilogue_equals_the_bias_then_the_relu(dtype):
    y = awkward((2, 5, 40), dtype)
    bias = np.random.default_rng(3).standard_normal(5).astype(dtype)
    bias[0] = 0.0  # -0.0 + 0.0 is +0.0 before the ReLU sees it
    expected = y.copy()
    expected += bias[:, None]
    expected = relu_kernels.relu_forward(expected)
    for view in (lambda a: a[1, :, 3:31], lambda a: a[0]):  # a strided tile, a contiguous matrix
        out = y.copy()
        relu_kernels.add_bias_rectify(view(out), bias)
        assert_same_bits(view(out), view(expected))
    stack = y.copy()
    relu_kernels.add_bias_rectify(stack, bias)
    assert_same_bits(stack, expected)
    plain = y.copy()
    relu_kernels.add_bias_rectify(plain)
    assert_same_bits(plain, relu_kernels.relu_forward(y))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [11, (1 << 20) + 3])
def test_relu_in_place_equals_the_relu_layers_kernel(dtype, size):
    y = awkward((size,), dtype)
    expected = relu_kernels.relu_forward(y)
    assert expected[0] == 0 and not np.signbit(expected[0])  # -0.0 became +0.0
    assert expected[4] == 0 and np.isnan(np.maximum(y[4:5], 0)[0])  # NaN became 0, unlike np.maximum
    out = relu_kernels.rectify_in_place(y)
    assert out is y
    assert_same_bits(y, expected)
    strided = awkward((6, 8), dtype)[:, ::2]  # no flat view: through a new array, still in place
    expected = relu_kernels.relu_forward(strided)
    relu_kernels.rectify_in_place(strided)
    assert_same_bits(strided, expected)


LOWERINGS = [  # (algorithm, kernel size, stride, padding, channels in, out, side)
    ("im2col", 3, 2, 1, 5, 7, 9),
    ("pointwise", 1, 1, 0, 6, 9, 8),
    ("pointwise", 1, 2, 0, 6, 9, 8),
    ("winograd", 3, 1, 1, 16, 16, 10),
    ("winograd4", 3, 1, 1, 16, 16, 10),
]


@pytest.mark.parametrize("algorithm, k, stride, padding, c, o, side", LOWERINGS)
@pytest.mark.parametrize("batch", [1, 3])  # pointwise: one product, or a stack of them
def test_each_lowering_rectifies_to_the_relu_of_its_output(algorithm, k, stride, padding, c, o, side, batch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, c, side, side)).astype(np.float32)
    w = rng.standard_normal((o, c, k, k)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    y, cache = conv2d_forward(x, w, b, stride, padding, algorithm)
    fused, fused_cache = conv2d_forward(x, w, b, stride, padding, algorithm, rectify=True)
    assert y.min() < 0 < y.max()  # the ReLU changes something
    assert_same_bits(fused, relu_kernels.relu_forward(y))
    assert fused_cache.x is cache.x  # the cache (the input) is the unfused pass's


def test_batchnorm_and_add_layers_rectify_to_the_relu_of_their_output():
    rng = np.random.default_rng(0)
    bn = mc.BatchNorm2D(4)
    bn.init_params(rng)
    bn.bias = rng.standard_normal(4).astype(np.float32)
    x = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    assert_same_bits(bn.forward(x, rectify=True)[0], relu_kernels.relu_forward(bn.forward(x)[0]))
    xs = (x, rng.standard_normal(x.shape).astype(np.float32))
    y, count = mc.Add().forward(xs, rectify=True)
    assert count == 2
    assert_same_bits(y, relu_kernels.relu_forward(xs[0] + xs[1]))


def test_only_producers_and_rectifiers_declare_their_parts():
    kinds = {cls.kind: cls for cls in mc.layers.LAYER_KINDS.values()}
    fusing = sorted(kind for kind, cls in kinds.items() if cls.fuses_rectifier)
    assert fusing == ["Add", "BatchNorm2D", "Conv2D"]
    with pytest.raises(MinicnnError, match="is not a rectifier"):
        mc.Conv2D(1, 1, 1, name="c").forward_rectified(np.zeros((1, 1, 1, 1), np.float32))


# -- whole passes ------------------------------------------------------------------------------
def resnet18_with_statistics(dtype=np.float32):
    """ResNet-18 at 64 x 64 whose BatchNorms are not the identity (random gamma, beta and running
    statistics), so that their outputs, fused with the ReLU, have signs of both kinds."""
    net = mc.resnet18(seed=0, num_classes=7, input_size=64)
    rng = np.random.default_rng(5)
    for layer, key, value in list(net.parameters()):
        if key in ("weight", "bias") and layer.is_convolution:
            continue
        if value.ndim == 1 and key in ("weight", "bias", "running_mean", "running_var"):
            low, high = {"weight": (0.5, 1.5), "bias": (-0.3, 0.3),
                         "running_mean": (-0.2, 0.2), "running_var": (0.5, 2.0)}[key]  # fmt: skip
            setattr(layer, key, rng.uniform(low, high, value.shape).astype(value.dtype))
    return net.astype(dtype)


def fused_pairs(rec) -> dict:
    """Fused layer -> its ReLU, read from the reasons the record gives."""
    return {name: why for name, why in rec.outputs.freed.items() if "computed the ReLU" in why}


def assert_fused_pass_equals_full(net, x, expected_fused: int):
    full = net.run(x)
    dy = one_hot(np.arange(len(x)) % full.output().shape[1], full.output())
    for keep in ("caches", "output"):
        rec = net.run(x, keep=keep)
        fused = fused_pairs(rec)
        assert len(fused) == expected_fused, keep
        assert any(full.output(name).min() < 0 for name in fused)  # the fused ReLUs did something
        assert_same_bits(rec.output(), full.output())
        for name in rec.outputs:
            assert_same_bits(rec.outputs[name], full.outputs[name])
        for name in fused:
            with pytest.raises(MinicnnError, match=f"{name!r} was not kept: this pass") as err:
                rec.output(name)
            assert "\n" not in str(err.value)
    for mode in ("gradient", "guided", "deconvnet"):
        lean = net.run(x, keep="caches")
        assert_same_bits(lean.backward(dy, mode=mode, release=True), full.backward(dy, mode=mode))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vgg_style_chain_fused_equals_every_output_kept(dtype):
    net, x = vgg_style(dtype)
    assert_fused_pass_equals_full(net, x, expected_fused=3)  # the convolutions (a dense layer does not fuse)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resnet18_fused_equals_every_output_kept(dtype):
    """Every BatchNorm read only by a ReLU (the stem's and each block's first) and every sum."""
    net = resnet18_with_statistics(dtype)
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(dtype)
    assert_fused_pass_equals_full(net, x, expected_fused=1 + 8 + 8)


def test_residual_graph_fuses_its_convolutions_on_every_lowering():
    """Without BatchNorm layers (loaders fold them into the convolutions) a ReLU reads a
    convolution or a sum: Winograd F(4x4), F(2x2), pointwise and im2col convolutions each fuse it."""
    net = mc.Graph(
        [mc.Conv2D(3, 16, 3, padding=1, name="stem", algorithm="im2col"), mc.ReLU(name="stem_relu"),
         mc.Conv2D(16, 16, 3, padding=1, name="a", algorithm="winograd4"), mc.ReLU(name="a_relu"),
         mc.Conv2D(16, 16, 3, padding=1, name="b", algorithm="winograd"),
         (mc.Add(name="add"), ("b", "stem_relu")), mc.ReLU(name="add_relu"),
         mc.Conv2D(16, 8, 1, name="c", algorithm="pointwise"), mc.ReLU(name="c_relu"),
         mc.GlobalAvgPool2D(name="gap"), mc.Dense(8, 5, name="out")],
        seed=0, meta={"input_shape": (3, 12, 12)},
    )  # fmt: skip
    x = np.random.default_rng(2).standard_normal((2, 3, 12, 12)).astype(np.float32)
    assert_fused_pass_equals_full(net, x, expected_fused=4)
    assert set(fused_pairs(net.run(x, keep="output"))) == {"stem", "a", "add", "c"}


def test_saliency_maps_are_the_full_records(monkeypatch):
    """mc.saliency runs keep="caches", which fuses; the same map with every pass keeping all."""
    net = resnet18_with_statistics()
    x = np.random.default_rng(3).standard_normal((2, 3, 64, 64)).astype(np.float32)
    lean = mc.saliency(net, x, 1, signed=True)
    run = mc.Graph.run
    monkeypatch.setattr(mc.Graph, "run", lambda self, x, *a, keep="all", **k: run(self, x, *a, **k))
    assert_same_bits(mc.saliency(net, x, 1, signed=True), lean)
    assert np.abs(lean).max() > 0


def test_an_output_read_twice_is_not_fused():
    """conv -> relu, and conv also read by the sum: its output is needed, so nothing fuses there."""
    net = mc.Graph(
        [mc.Conv2D(3, 4, 3, padding=1, name="conv"), mc.ReLU(name="relu"),
         (mc.Add(name="add"), ("relu", "conv")), mc.ReLU(name="out")],
        seed=0, meta={"input_shape": (3, 8, 8)},
    )  # fmt: skip
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    rec = net.run(x, keep="output")
    assert list(fused_pairs(rec)) == ["add"]
    assert_same_bits(rec.output(), net.run(x).output())


def test_stop_at_the_producer_keeps_its_output_unrectified():
    net, x = vgg_style(np.float32)
    rec = net.run(x, stop="c2", keep="output")
    assert list(fused_pairs(rec)) == ["c1"]  # c2's ReLU does not run: c2's output is the pass's
    assert rec.output().min() < 0
    assert_same_bits(rec.output(), net.run(x).output("c2"))


def test_keep_output_keeps_the_last_output_alone_and_refuses_backward():
    net, x = vgg_style(np.float32)
    rec = net.run(x, keep="output")
    assert list(rec.outputs) == ["out"] and all(cache is None for cache in rec._caches)
    dy = one_hot([0, 1, 2], rec.output())
    for ask in (lambda: rec.backward(dy), lambda: rec.cache("c1")):
        with pytest.raises(MinicnnError, match="keep='output'") as err:
            ask()
        assert "\n" not in str(err.value)
    with pytest.raises(MinicnnError, match="'fc1_relu' was not kept: this pass ran with keep='output'"):
        rec.output("fc1_relu")
