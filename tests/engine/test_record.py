"""The record of a pass: tools hold their own, backward starts and stops at named layers, and one
forward serves several backward rules."""

import numpy as np
import pytest
from support import assert_close

import minicnn as mc
from minicnn.errors import MinicnnError


def net_and_input():
    net = mc.Sequential(
        [mc.Conv2D(2, 4, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2), mc.Conv2D(4, 3, 3), mc.ReLU(),
         mc.Flatten(), mc.Dense(3 * 2 * 2, 5)],
        seed=0, dtype=np.float64,
    )  # fmt: skip
    x = np.random.default_rng(0).standard_normal((2, 2, 8, 8))
    return net, x


def test_a_second_pass_leaves_a_held_record_alone():
    net, x = net_and_input()
    rec = net.run(x)
    kept = {name: out.copy() for name, out in rec.outputs.items()}
    dx_before = rec.backward(np.ones((2, 5)))
    net.forward(x * 3 + 1)  # another pass (a tool elsewhere)
    net.run(-x)
    for name, out in rec.outputs.items():
        assert np.array_equal(out, kept[name]), name
    assert np.array_equal(rec.backward(np.ones((2, 5))), dx_before)
    # and the record differs from the other pass, so the check above is not vacuous
    assert not np.allclose(net.last.output(), rec.output())


def test_backward_stop_equals_the_layers_chained_by_hand():
    """stop=L returns the signal at L's output: compare with each layer's own backward, applied by hand."""
    net, x = net_and_input()
    rec = net.run(x)
    dy = np.random.default_rng(1).standard_normal((2, 5))
    at = rec.backward(dy, stop="maxpool2d_0")
    signal = dy
    for layer in reversed(net.layers[3:]):  # conv2d_1 ... dense_0, run above the pool
        signal, _ = layer.backward(signal, rec.cache(layer.name))
    assert at.shape == rec.output("maxpool2d_0").shape
    assert_close(at, signal, 1e-15)
    # starting and stopping: from relu_1 down to the pool
    mid = rec.output("relu_1")
    g = np.random.default_rng(2).standard_normal(mid.shape)
    part = rec.backward(g, start="relu_1", stop="maxpool2d_0")
    by_hand, _ = net["conv2d_1"].backward(
        net["relu_1"].backward(g, rec.cache("relu_1"))[0], rec.cache("conv2d_1")
    )
    assert_close(part, by_hand, 1e-15)
    # stop at the start layer itself: the signal comes back unchanged
    assert np.array_equal(rec.backward(g, start="relu_1", stop="relu_1"), g)


def test_record_errors_name_what_was_expected():
    net, x = net_and_input()
    rec = net.run(x, stop="maxpool2d_0")
    with pytest.raises(MinicnnError, match="stopped at 'maxpool2d_0'"):
        rec.backward(np.ones((2, 5)), start="dense_0")
    with pytest.raises(MinicnnError, match="unknown layer 'fc9'"):
        rec.output("fc9")
    with pytest.raises(MinicnnError, match="must stop at or below"):
        net.run(x).backward(np.ones((2, 4, 8, 8)), start="conv2d_0", stop="dense_0")


def test_reconstruct_several_modes_from_one_forward(monkeypatch):
    net, x = net_and_input()
    calls = []
    real_run = mc.Sequential.run
    monkeypatch.setattr(
        mc.Sequential, "run", lambda self, *a, **k: calls.append(1) or real_run(self, *a, **k)
    )
    together = mc.reconstruct(net, x, "relu_1", mode=mc.MODES)
    assert len(calls) == 1
    for mode in mc.MODES:
        alone = mc.reconstruct(net, x, "relu_1", mode=mode)
        assert np.array_equal(together[mode], alone), mode
    assert not np.allclose(together["gradient"], together["deconvnet"])  # the modes really differ


def test_tools_reuse_a_callers_record_and_refuse_a_foreign_one():
    net, x = net_and_input()
    rec = net.run(x)
    assert np.array_equal(mc.saliency(net, x, 1, record=rec), mc.saliency(net, x, 1))
    with pytest.raises(MinicnnError, match="same x"):
        mc.saliency(net, x, 1, record=net.run(x.copy()))


def test_get_xp_recognises_a_cupy_array_before_cupy_was_asked_for():
    """Issue 13: get_xp used to report a CuPy array as NumPy until cupy_module() had run once. An
    object whose type lives in a cupy module is now sent to CuPy (here: the one-line no-GPU error)."""
    from minicnn import backend

    fake = type("ndarray", (), {"__module__": "cupy._core.core"})()
    if backend.gpu_available():
        pytest.skip("a real GPU is here; the fake array would be handed to CuPy")
    with pytest.raises(MinicnnError, match="needs CuPy and a CUDA device"):
        backend.get_xp(fake)
    assert backend.get_xp(np.zeros(2)) is np and backend.device_of(np.zeros(2)) == "cpu"
