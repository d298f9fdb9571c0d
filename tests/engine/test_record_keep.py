"""A pass run with keep="caches" frees the outputs that backward does not read, one run with
keep="input-gradient" keeps only what the input gradient reads (ReLU masks as bits, no
convolution inputs), and a backward with release=True lets each layer's cache go once it has run: the signals
are the same to the bit as a full record's, a freed output or a backward the record cannot serve
is a one-line error, and the bytes a record keeps fall by what it no longer holds."""

import numpy as np
import pytest

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.kernels import relu as relu_kernels
from minicnn.kernels.relu import unpack_signs
from minicnn.layers import LAYER_KINDS
from minicnn.tools import methods
from minicnn.tools.targets import one_hot

MODES = ("gradient", "deconvnet", "guided")


def vgg_style(dtype):
    """conv-ReLU pairs, max-pools and dense-ReLU pairs, as in VGG (Simonyan & Zisserman 2014)."""
    net = mc.Sequential(
        [mc.Conv2D(3, 8, 3, padding=1, name="c1"), mc.ReLU(name="r1"),
         mc.Conv2D(8, 8, 3, padding=1, name="c2"), mc.ReLU(name="r2"), mc.MaxPool2D(2, name="p1"),
         mc.Conv2D(8, 16, 3, padding=1, name="c3"), mc.ReLU(name="r3"), mc.MaxPool2D(2, name="p2"),
         mc.Flatten(name="flat"), mc.Dense(16 * 4 * 4, 32, name="fc1"), mc.ReLU(name="fc1_relu"),
         mc.Dense(32, 5, name="out")],
        seed=0, dtype=dtype,
    )  # fmt: skip
    x = np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(dtype)
    return net, x


def every_kind(dtype):
    """A chain of every layer kind a chain can run (Add: the ResNet below), BatchNorm's statistics
    set away from the identity, ending in probabilities."""
    net = mc.Sequential(
        [mc.Conv2D(3, 8, 3, padding=1, name="c1"), mc.BatchNorm2D(8, name="bn1"), mc.ReLU(name="r1"),
         mc.MaxPool2D(2, name="p1"), mc.Conv2D(8, 8, 3, padding=1, name="c2"), mc.ReLU(name="r2"),
         mc.AvgPool2D(2, name="a1"), mc.AdaptiveAvgPool2D(2, name="aa"), mc.Flatten(name="flat"),
         mc.Dense(32, 16, name="fc1"), mc.ReLU(name="r3"), mc.Dropout(0.5, name="drop"),
         mc.Dense(16, 5, name="out"), mc.Softmax(name="prob")],
        seed=0, dtype=dtype,
    )  # fmt: skip
    rng = np.random.default_rng(2)
    bn = net["bn1"]
    bn.weight, bn.bias = rng.uniform(0.5, 2, 8).astype(dtype), rng.standard_normal(8).astype(dtype)
    bn.running_mean, bn.running_var = (
        rng.standard_normal(8).astype(dtype),
        rng.uniform(0.5, 2, 8).astype(dtype),
    )
    x = rng.standard_normal((3, 3, 16, 16)).astype(dtype)
    return net, x


def gap_head(dtype):
    """Convolutions into global average pooling, then a dense layer (the remaining head kind)."""
    net = mc.Sequential(
        [mc.Conv2D(3, 8, 3, padding=1, name="c1"), mc.ReLU(name="r1"),
         mc.Conv2D(8, 8, 3, stride=2, name="c2"), mc.ReLU(name="r2"), mc.GlobalAvgPool2D(name="gap"),
         mc.Dense(8, 4, name="out")],
        seed=0, dtype=dtype,
    )  # fmt: skip
    return net, np.random.default_rng(3).standard_normal((2, 3, 12, 12)).astype(dtype)


@pytest.fixture(scope="module")
def resnet():
    return mc.resnet18(seed=0, num_classes=7, input_size=64)


def base(a):
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def arrays(value):
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, tuple):
        for part in value:
            yield from arrays(part)


def kept_bytes(rec) -> int:
    """Bytes of every distinct array the record holds: input, outputs, caches (views counted once,
    as the memory they share)."""
    held = [rec.input, *rec.outputs.values(), *(a for name in rec.names for a in arrays(rec.cache(name)))]
    return sum(b.nbytes for b in {id(base(a)): base(a) for a in held}.values())


def assert_same_signals(net, x):
    full, lean, slim = net.run(x), net.run(x, keep="caches"), net.run(x, keep="input-gradient")
    assert lean.outputs.freed, "nothing was freed: the comparison would be of a record with itself"
    assert slim.outputs.freed
    # the slim record holds no ReLU output and no convolution input, only masks and stand-ins
    for layer in net.layers:
        cache = slim.cache(layer.name)
        if layer.is_rectifier:
            y = full.output(layer.name)
            assert cache.bits.dtype == np.uint8 and cache.bits.size == -(-y.size // 8)
            assert np.array_equal(unpack_signs(cache), y > 0)
        if layer.is_convolution:
            assert cache.x.shape == full.cache(layer.name).x.shape and not any(cache.x.strides)
    assert np.array_equal(full.output(), lean.output()) and np.array_equal(full.output(), slim.output())
    dy = one_hot(np.arange(len(x)) % full.output().shape[1], full.output())
    for mode in MODES:
        a, b = full.backward(dy, mode=mode), lean.backward(dy, mode=mode)
        c = net.run(x, keep="caches").backward(dy, mode=mode, release=True)
        d = slim.backward(dy, mode=mode)
        e = net.run(x, keep="input-gradient").backward(dy, mode=mode, release=True)
        assert np.abs(a).max() > 0, mode
        assert a.dtype == b.dtype == c.dtype == d.dtype == e.dtype == x.dtype, mode
        assert all(a.tobytes() == other.tobytes() for other in (b, c, d, e)), mode
    full.backward(dy, need_params=True)
    lean.backward(dy, need_params=True)
    assert full.grads.keys() == lean.grads.keys()
    for name, grads in full.grads.items():
        for key, value in grads.items():
            assert np.array_equal(value, lean.grads[name][key]), (name, key)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chain_signals_equal_a_full_records_bit_for_bit(dtype):
    assert_same_signals(*vgg_style(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_graph_signals_equal_a_full_records_bit_for_bit(resnet, dtype):
    net = resnet if dtype == np.float32 else mc.resnet18(seed=0, num_classes=7, input_size=64).astype(dtype)
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(dtype)
    assert_same_signals(net, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("build", [every_kind, gap_head])
def test_every_layer_kind_signals_equal_a_full_records(build, dtype):
    assert_same_signals(*build(dtype))


def test_the_tests_cover_every_layer_kind(resnet):
    nets = [every_kind(np.float32)[0], gap_head(np.float32)[0], vgg_style(np.float32)[0], resnet]
    assert {layer.kind for net in nets for layer in net.layers} == set(LAYER_KINDS)


def maps(net, x):
    """The maps of the tools that run keep="input-gradient" passes: saliency (signed, SmoothGrad,
    times the input), guided backpropagation and integrated gradients."""
    return [
        mc.saliency(net, x, 1, signed=True),
        mc.saliency(net, x, 1, samples=3, progress=False),
        mc.saliency(net, x, 1, signed=True, times_input=True),
        mc.saliency(net, x, 1, samples=2, times_input=True, progress=False),
        methods.compute("guided", net, x, 1),
        mc.integrated_gradients(net, x, 1, steps=4, batch_size=6),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saliency_guided_and_integrated_gradients_equal_a_full_records(monkeypatch, dtype):
    """The tools run keep="input-gradient"; the same maps with every pass forced to keep everything."""
    net, x = vgg_style(dtype)
    lean = maps(net, x)
    run = mc.Sequential.run
    kept = []

    def full_run(self, x, *args, keep="all", **kwargs):
        kept.append(keep)
        return run(self, x, *args, **kwargs)

    monkeypatch.setattr(mc.Sequential, "run", full_run)
    full = maps(net, x)
    assert set(kept) == {"input-gradient"}  # the tools asked for the slim record, got a full one here
    for a, b in zip(full, lean):
        assert a.dtype == b.dtype == dtype and np.abs(a).max() > 0
        assert a.tobytes() == b.tobytes()


def test_a_freed_output_is_one_line_naming_the_layer():
    net, x = vgg_style(np.float64)
    rec = net.run(x, keep="caches")
    for ask in (lambda: rec.output("c2"), lambda: rec.outputs["c2"]):
        with pytest.raises(MinicnnError, match="'c2' was not kept") as err:
            ask()
        assert "\n" not in str(err.value)
    # a kept output is the full record's; an unknown name is still the usual error
    assert np.array_equal(rec.output("r2"), net.run(x).output("r2"))
    with pytest.raises(MinicnnError, match="unknown layer"):
        rec.output("nope")
    # LRP reads every linear layer's output: refused in one line, not computed wrongly
    with pytest.raises(MinicnnError, match="was not kept"):
        rec.backward(one_hot([0, 1, 2], rec.output()), mode=mc.Epsilon())
    with pytest.raises(MinicnnError, match="keep must be one of 'all', 'caches', 'input-gradient'"):
        net.run(x, keep="some")


@pytest.mark.parametrize("keep", ["caches", "input-gradient"])
def test_a_freed_output_names_the_keep_that_freed_it(keep):
    net, x = vgg_style(np.float64)
    # c2's ReLU is computed inside it in such a pass (minicnn/fusion.py): the line names the keep too
    with pytest.raises(MinicnnError, match=f"'c2' was not kept: this pass.*keep='{keep}'"):
        net.run(x, keep=keep).output("c2")


@pytest.mark.parametrize("graph", [False, True], ids=["chain", "graph"])
def test_an_input_gradient_record_refuses_what_it_cannot_serve_in_one_line(resnet, graph):
    """Parameter gradients read the inputs, LRP and DeepLIFT rules the outputs: a keep="input-gradient"
    record holds neither and says so before any work."""
    if graph:
        net, x = resnet, np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    else:
        net, x = vgg_style(np.float64)
    rec = net.run(x, keep="input-gradient")
    dy = one_hot(np.arange(len(x)) % rec.output().shape[1], rec.output())
    asks = [
        ("parameter gradients", {"need_params": True}),
        ("the rule Epsilon", {"mode": mc.Epsilon()}),
        ("the rule Composite", {"mode": mc.COMPOSITES["epsilon-plus"]()}),
        ("the rule DeepLift", {"mode": mc.DeepLift(net.run(np.zeros_like(x)))}),
    ]
    for what, kwargs in asks:
        with pytest.raises(MinicnnError, match=f"keep='input-gradient'.*not {what}: run it with") as err:
            rec.backward(dy, **kwargs)
        assert "\n" not in str(err.value)
    # the refusals left the record whole: it still serves the named rules
    assert np.array_equal(rec.backward(dy, mode="guided"), net.run(x).backward(dy, mode="guided"))


def test_a_convolution_refuses_the_weight_gradient_on_an_input_gradient_cache():
    """The convolution's stand-in input has the input's shape and no values: the weight gradient,
    asked of the layer itself, is one line, never a gradient of zeros."""
    net, x = vgg_style(np.float32)
    rec = net.run(x, keep="input-gradient")
    dy = np.ones_like(net.run(x).output("c1"))
    dx, grads = net["c1"].backward(dy, rec.cache("c1"))
    assert grads is None and dx.shape == x.shape
    with pytest.raises(MinicnnError, match="weight gradient reads the convolution's input") as err:
        net["c1"].backward(dy, rec.cache("c1"), need_params=True)
    assert "\n" not in str(err.value)


def test_a_released_record_refuses_a_second_backward_and_keeps_its_scores():
    net, x = vgg_style(np.float64)
    rec = net.run(x, keep="caches")
    scores = rec.output().copy()
    dy = one_hot([0, 1, 2], scores)
    rec.backward(dy, release=True)
    for ask in (lambda: rec.backward(dy), lambda: rec.cache("c1")):
        with pytest.raises(MinicnnError, match="let go by backward") as err:
            ask()
        assert "\n" not in str(err.value)
    with pytest.raises(MinicnnError, match="'r2' was not kept: backward"):
        rec.output("r2")
    assert np.array_equal(rec.output(), scores)
    # and a backward without release leaves the record for the next one
    rec = net.run(x, keep="caches")
    assert np.array_equal(rec.backward(dy), rec.backward(dy, mode="gradient"))


def test_release_lets_every_cache_go():
    """After a released backward the record holds its input and its scores and nothing else."""
    net, x = vgg_style(np.float32)
    rec = net.run(x)
    rec.backward(one_hot([0, 1, 2], rec.output()), release=True)
    assert list(rec.outputs) == ["out"] and all(cache is None for cache in rec._caches)


def test_default_run_keeps_every_output():
    net, x = vgg_style(np.float32)
    rec = net.run(x)
    assert set(rec.outputs) == set(net.names) and not rec.outputs.freed


def test_vgg16_keeps_fewer_bytes_by_its_convolutions_outputs():
    """Every VGG16 convolution's output is read only by its ReLU, which keeps its own output:
    keep="caches" drops exactly the 13 convolution outputs (Simonyan & Zisserman 2014, table 1,
    configuration D), whose sizes are written out here from the table, not from the network."""
    net = mc.vgg16(seed=0, include_top=False, input_size=32)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    # (convolutions, channels, side) per block at a 32 x 32 input
    blocks = [(2, 64, 32), (2, 128, 16), (3, 256, 8), (3, 512, 4), (3, 512, 2)]
    expected = 2 * 4 * sum(convs * channels * side * side for convs, channels, side in blocks)
    assert kept_bytes(net.run(x)) - kept_bytes(net.run(x, keep="caches")) == expected


def test_vgg16_input_gradient_keeps_a_bit_per_relu_output():
    """Against keep="caches", keep="input-gradient" keeps each of the 13 ReLU outputs as its mask
    (one bit per value instead of 32), and each convolution's input as a one-value stand-in
    (four bytes): the ReLU outputs and the first four max-pools' outputs go (the network's input,
    the first convolution's, is kept anyway)."""
    net = mc.vgg16(seed=0, include_top=False, input_size=32)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    blocks = [(2, 64, 32), (2, 128, 16), (3, 256, 8), (3, 512, 4), (3, 512, 2)]
    relu_values = 2 * sum(convs * channels * side * side for convs, channels, side in blocks)
    pooled_values = 2 * sum(channels * (side // 2) ** 2 for _, channels, side in blocks[:4])
    expected = 4 * relu_values - relu_values // 8 + 4 * pooled_values - 13 * 4
    assert kept_bytes(net.run(x, keep="caches")) - kept_bytes(net.run(x, keep="input-gradient")) == expected


@pytest.mark.parametrize("chunk", [8, 16, 1 << 20])
def test_sign_bits_packed_in_chunks_are_numpys_packbits(monkeypatch, chunk):
    """Packing in chunks (several, one, a last partial one) gives np.packbits of the whole mask."""
    monkeypatch.setattr(relu_kernels, "PACK_CHUNK", chunk)
    y = np.maximum(np.random.default_rng(5).standard_normal((3, 5, 7)), 0).astype(np.float32)
    signs = relu_kernels.pack_signs(y)
    assert signs.shape == y.shape and signs.bits.tobytes() == np.packbits(y > 0).tobytes()
    assert np.array_equal(unpack_signs(signs), y > 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sign_bits_give_the_relu_backward_of_the_output(dtype):
    """A ReLU's packed mask (not a multiple of eight values) serves the three rules with the bits
    of its float output."""
    rng = np.random.default_rng(4)
    y = np.maximum(rng.standard_normal((2, 3, 5, 7)), 0).astype(dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    signs = mc.ReLU().input_gradient_cache(y)
    assert signs.bits.nbytes == -(-y.size // 8) and np.array_equal(unpack_signs(signs), y > 0)
    for mode in MODES:
        a, b = mc.ReLU().backward(dy, y, mode=mode)[0], mc.ReLU().backward(dy, signs, mode=mode)[0]
        assert np.abs(a).max() > 0 and a.dtype == b.dtype == dtype and a.tobytes() == b.tobytes(), mode
