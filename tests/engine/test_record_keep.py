"""A pass run with keep="caches" frees the outputs that backward does not read, and a backward
with release=True lets each layer's cache go once it has run: the signals are the same to the bit
as a full record's, a freed output is a one-line error naming the layer, and the bytes a record
keeps fall by the outputs that no cache holds."""

import numpy as np
import pytest

import minicnn as mc
from minicnn.errors import MinicnnError
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
    full, lean = net.run(x), net.run(x, keep="caches")
    assert lean.outputs.freed, "nothing was freed: the comparison would be of a record with itself"
    assert np.array_equal(full.output(), lean.output())
    dy = one_hot(np.arange(len(x)) % full.output().shape[1], full.output())
    for mode in MODES:
        a, b = full.backward(dy, mode=mode), lean.backward(dy, mode=mode)
        c = net.run(x, keep="caches").backward(dy, mode=mode, release=True)
        assert np.abs(a).max() > 0, mode
        assert a.dtype == b.dtype == c.dtype == x.dtype, mode
        assert np.array_equal(a, b) and np.array_equal(a, c), mode
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
def test_saliency_and_smoothgrad_equal_a_full_records(monkeypatch, dtype):
    """mc.saliency runs keep="caches"; the same maps with every pass forced to keep everything."""
    net, x = vgg_style(dtype)
    lean = [mc.saliency(net, x, 1, signed=True), mc.saliency(net, x, 1, samples=3, progress=False)]
    run = mc.Sequential.run
    kept = []

    def full_run(self, x, *args, keep="all", **kwargs):
        kept.append(keep)
        return run(self, x, *args, **kwargs)

    monkeypatch.setattr(mc.Sequential, "run", full_run)
    full = [mc.saliency(net, x, 1, signed=True), mc.saliency(net, x, 1, samples=3, progress=False)]
    assert "caches" in kept  # saliency asked for the lean record, and got a full one here
    for a, b in zip(full, lean):
        assert a.dtype == b.dtype == dtype and np.abs(a).max() > 0
        assert np.array_equal(a, b)


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
    with pytest.raises(MinicnnError, match="keep must be one of 'all', 'caches'"):
        net.run(x, keep="some")


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


def test_resnet18_keeps_fewer_bytes_by_its_batchnorm_and_sum_outputs(resnet):
    """In a ResNet-18 (He et al. 2016, table 1) a BatchNorm keeps its input (for the parameter
    gradients) and a ReLU its output; what no cache holds is each BatchNorm's output (read by a
    ReLU or a sum) and each sum's output (read by the block's ReLU): three per block, four with
    a projection shortcut, plus the stem's BatchNorm."""
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    stem = 64 * 32 * 32  # conv1 (stride 2) at a 64 x 64 input
    # (channels, side, maps per first block, maps per second block) for layer1 ... layer4
    stages = [(64, 16, 3, 3), (128, 8, 4, 3), (256, 4, 4, 3), (512, 2, 4, 3)]
    per_image = stem + sum((a + b) * c * s * s for c, s, a, b in stages)
    freed = kept_bytes(resnet.run(x)) - kept_bytes(resnet.run(x, keep="caches"))
    assert freed == 2 * 4 * per_image
