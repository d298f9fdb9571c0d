"""A Conv2D keeps Winograd's transformed kernels between calls (minicnn/kernels/kernel_cache.py): they
are reused while the weights are unchanged and rebuilt after any change to their content, by the
optimiser, by assignment, or by a one-ulp write in place that no version counter would have seen."""

import copy

import numpy as np
import pytest
from support import assert_close

import minicnn as mc
from minicnn.kernels import kernel_cache
from minicnn.kernels.conv import conv2d_forward
from minicnn.kernels.kernel_cache import KernelTransforms, fingerprint
from minicnn.train.optim import SGD


def layer_and_input(algorithm="winograd4"):
    rng = np.random.default_rng(0)
    layer = mc.Conv2D(16, 16, 3, padding=1, algorithm=algorithm)
    layer.init_params(rng)
    layer.bias = rng.standard_normal(16).astype(np.float32)
    return layer, rng.standard_normal((1, 16, 12, 12)).astype(np.float32)


def reference(layer, x):
    """The same layer's output through im2col, which keeps nothing between calls."""
    return conv2d_forward(x, layer.weight, layer.bias, 1, layer.padding, algorithm="im2col")[0]


def counting(monkeypatch):
    """Count the kernel transforms that run (returns the list the calls are appended to)."""
    calls = []
    real = kernel_cache.KernelTransforms.get

    def get(self, w, lowering, transform):
        return real(self, w, lowering, lambda *a, **k: calls.append(lowering) or transform(*a, **k))

    monkeypatch.setattr(kernel_cache.KernelTransforms, "get", get)
    return calls


@pytest.mark.parametrize("algorithm", ["winograd4", "winograd"])
def test_kept_while_unchanged_rebuilt_after_any_change(monkeypatch, algorithm):
    layer, x = layer_and_input(algorithm)
    calls = counting(monkeypatch)
    y, cache = layer.forward(x)
    layer.backward(np.ones_like(y), cache)
    layer.forward(x)
    layer.backward(np.ones_like(y), cache)
    assert calls == [algorithm]  # one for both directions (backward reads it transposed), then kept
    assert len(layer.transforms) == 1
    # the smallest change in place: one weight moved by one ulp
    layer.weight[3, 5, 1, 2] = np.nextafter(layer.weight[3, 5, 1, 2], np.float32(np.inf))
    after, _ = layer.forward(x)
    assert len(calls) == 2
    assert_close(after, reference(layer, x), 2e-5, "after an in-place change")
    # a new array with the same values is the same content: kept
    layer.weight = layer.weight.copy()
    layer.forward(x)
    assert len(calls) == 2


def test_optimiser_steps_are_seen():
    """Training steps write the weights in place (optim.SGD); every pass uses the current weights."""
    net = mc.Sequential(
        [mc.Conv2D(16, 16, 3, padding=1, algorithm="winograd4"), mc.GlobalAvgPool2D()], seed=0
    )
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 16, 10, 10)).astype(np.float32)
    sgd = SGD(net, momentum=0.0, weight_decay=0.0)
    for _ in range(3):
        y = net.forward(x)
        assert_close(y, reference(net[0], x).mean(axis=(2, 3)), 2e-5, "forward after a step")
        net.backward(np.ones_like(y), need_params=True)
        sgd.step(0.5)


def test_without_the_content_check_the_kept_kernel_would_be_stale(monkeypatch):
    """The check is what makes it right: with a fingerprint that ignores the content, an in-place
    change is missed and the layer computes with the old kernel."""
    layer, x = layer_and_input()
    monkeypatch.setattr(kernel_cache, "fingerprint", lambda w: (w.shape, w.dtype.str, 0))
    before, _ = layer.forward(x)
    layer.weight *= 2
    stale, _ = layer.forward(x)
    np.testing.assert_array_equal(stale, before)
    assert np.abs(stale - reference(layer, x)).max() > 0.1 * np.abs(reference(layer, x)).max()


def test_fingerprint_sees_every_element_and_dtype():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    key = fingerprint(w)
    assert fingerprint(w.copy()) == key
    for index in [(0, 0, 0, 0), (7, 3, 2, 2), (4, 1, 1, 0)]:
        changed = w.copy()
        changed[index] = np.nextafter(changed[index], np.float32(np.inf))
        assert fingerprint(changed) != key, index
    swapped = w.copy()
    swapped[0, 0, 0, 0], swapped[0, 0, 0, 1] = w[0, 0, 0, 1], w[0, 0, 0, 0]
    assert fingerprint(swapped) != key
    assert fingerprint(w.astype(np.float64)) != key
    assert fingerprint(w.reshape(4, 8, 3, 3)) != key


def test_fingerprint_formula():
    """h(w) = sum_i word_i * (2i + 1) * 0x9E3779B97F4A7C15 mod 2^64, in Python's integers."""
    w = np.random.default_rng(3).standard_normal(1001).astype(np.float32)
    words = [int(v) for v in w.view(np.uint32)]
    expected = sum(v * (2 * i + 1) * 0x9E3779B97F4A7C15 for i, v in enumerate(words)) % (1 << 64)
    assert fingerprint(w)[2] == expected


def test_kept_kernels_are_read_only_and_copies_start_empty():
    layer, x = layer_and_input()
    layer.forward(x)
    u = layer.transforms.get(layer.weight, "winograd4", None)  # kept: transform not called
    with pytest.raises(ValueError):
        u[0, 0, 0] = 1.0
    twin = copy.deepcopy(layer)
    assert len(twin.transforms) == 0 and len(layer.transforms) == 1
    layer.transforms.clear()
    assert len(layer.transforms) == 0
    assert isinstance(twin.transforms, KernelTransforms)


@pytest.fixture
def limit():
    """Set the process's kernel-cache limit for one test and restore it afterwards."""
    before = mc.kernel_cache_limit()
    yield mc.set_kernel_cache_limit
    mc.set_kernel_cache_limit(before)


def _layers(count, channels=16):
    rng = np.random.default_rng(4)
    layers = []
    for _ in range(count):
        layer = mc.Conv2D(channels, channels, 3, padding=1, algorithm="winograd4")
        layer.init_params(rng)
        layers.append(layer)
    return layers, rng.standard_normal((1, channels, 12, 12)).astype(np.float32)


def test_the_limit_bounds_what_the_process_keeps(monkeypatch, limit):
    """Each layer's U (36 x 16 x 16 float32 = 36,864 bytes) is kept while it fits under the limit,
    first come first kept; beyond it every call rebuilds, and the outputs stay right either way."""
    layers, x = _layers(4)
    size = 36 * 16 * 16 * 4
    others = kernel_cache.kept_bytes()  # layers of other tests still alive in this process
    limit(others + 2 * size + size // 2)  # room for two
    calls = counting(monkeypatch)
    for _ in range(3):
        for layer in layers:
            y, _ = layer.forward(x)
            assert_close(y, reference(layer, x), 2e-5, "under a limit")
    assert [len(layer.transforms) for layer in layers] == [1, 1, 0, 0]
    assert kernel_cache.kept_bytes() == others + 2 * size
    assert len(calls) == 2 + 2 * 3  # the first two built once, the last two on every call
    assert layers[0].transforms.keeps(size, "winograd4") and not layers[2].transforms.keeps(size, "winograd4")
    limit(others + size)  # lowering the limit evicts now, the most recently kept first
    assert [len(layer.transforms) for layer in layers] == [1, 0, 0, 0]
    assert kernel_cache.kept_bytes() == others + size
    del layers[0]  # a dropped layer frees its room
    import gc

    gc.collect()
    assert kernel_cache.kept_bytes() == others
    layers[1].forward(x)
    assert len(layers[1].transforms) == 1


def test_no_room_means_f2_not_f4(limit):
    """auto takes F(4x4) on a deep layer only where its U is kept (rebuilding it on every call costs
    more than F(4x4) saves): with the limit at 0 the same layer runs F(2x2)."""
    from minicnn.kernels.conv import choose_lowering, transforms_kept

    layer = mc.Conv2D(512, 512, 3, padding=1)
    layer.weight = np.zeros((512, 512, 3, 3), np.float32)
    x = np.zeros((1, 512, 28, 28), np.float32)
    limit(kernel_cache.kept_bytes() + (64 << 20))  # room for its 36 MB U, whatever other tests keep
    assert (
        choose_lowering(x, layer.weight, 1, 1, "auto", transforms_kept(layer.transforms, layer.weight))
        == "winograd4"
    )
    limit(0)
    assert (
        choose_lowering(x, layer.weight, 1, 1, "auto", transforms_kept(layer.transforms, layer.weight))
        == "winograd"
    )


def test_a_negative_limit_is_refused(limit):
    with pytest.raises(mc.MinicnnError, match="the kernel cache limit must be >= 0 bytes, got -1"):
        limit(-1)
