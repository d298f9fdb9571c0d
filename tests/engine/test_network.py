"""Sequential behaviour: names, partial forward/backward, switches, and clear errors on bad input."""

import numpy as np
import pytest
from support import assert_close

import minicnn as mc
from minicnn.errors import MinicnnError


def small_net(seed=0):
    return mc.Sequential(
        [
            mc.Conv2D(3, 16, 3, padding=1),
            mc.ReLU(),
            mc.MaxPool2D(2),
            mc.Flatten(),
            mc.Dense(16 * 16 * 16, 10),
        ],
        seed=seed,
    )


def test_generated_names_and_lookup():
    net = small_net()
    assert net.names == ["conv2d_0", "relu_0", "maxpool2d_0", "flatten_0", "dense_0"]
    assert net["dense_0"] is net.layers[4]
    with pytest.raises(MinicnnError, match="conv2d_0, relu_0"):
        net.index("nope")
    with pytest.raises(MinicnnError, match="unique"):
        mc.Sequential([mc.ReLU(name="a"), mc.ReLU(name="a")])


def test_seeded_initialisation_is_reproducible_and_he_scaled():
    a, b, c = small_net(1), small_net(1), small_net(2)
    np.testing.assert_array_equal(a[0].weight, b[0].weight)
    assert not np.array_equal(a[0].weight, c[0].weight)
    fan_in = 4096
    assert_close(a[4].weight.std(), np.sqrt(2 / fan_in), 0.05, "He std")


def test_backward_from_a_named_layer_equals_masked_full_backward():
    """Starting at a layer with signal e equals starting at the output of that layer by definition:
    check it against the chain rule through the remaining layers computed by hand."""
    rng = np.random.default_rng(0)
    net = small_net()
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    net.forward(x)
    pool = net.outputs["maxpool2d_0"]
    g = rng.standard_normal(pool.shape).astype(np.float32)
    dx_partial = net.backward(g, start="maxpool2d_0")
    # the same signal built by hand: the chain rule through conv, relu and pool, each layer's own
    # forward and backward called directly (no Sequential), so the reference shares no bookkeeping
    # with the network's start logic (a net cut at the pool would run the same loop on both sides)
    h, caches = x, []
    for layer in net.layers[:3]:
        h, cache = layer.forward(h)
        caches.append(cache)
    by_hand = g
    for layer, cache in reversed(list(zip(net.layers[:3], caches, strict=True))):
        by_hand, _ = layer.backward(by_hand, cache)
    np.testing.assert_array_equal(dx_partial, by_hand)
    # forward with stop runs no further
    assert net.forward(x, stop="relu_0").shape == (2, 16, 32, 32)
    with pytest.raises(MinicnnError, match="stopped at"):
        net.backward(np.ones((2, 10), np.float32), start="dense_0")


def test_maxpool_switches_first_maximum_wins_ties():
    x = np.zeros((1, 1, 2, 4), np.float32)
    x[0, 0, :, 2:] = [[5, 5], [5, 1]]
    layer = mc.MaxPool2D(2)
    y, cache = layer.forward(x)
    assert cache.switches.tolist() == [[[[0, 0]]]]  # all-zero window and the 5-5-5 window: first wins
    dx, _ = layer.backward(np.ones_like(y), cache)
    assert dx[0, 0].tolist() == [[1, 0, 1, 0], [0, 0, 0, 0]]


def test_weight_gradients_only_when_asked():
    net = small_net()
    x = np.ones((1, 3, 32, 32), np.float32)
    net.forward(x)
    net.backward(np.ones((1, 10), np.float32))
    assert net.grads == {}
    net.backward(np.ones((1, 10), np.float32), need_params=True)
    assert set(net.grads) == {"conv2d_0", "dense_0"}


@pytest.mark.parametrize(
    "x,match",
    [
        (np.ones((3, 32, 32), np.float32), "conv2d_0.*expected input \\(N, C, H, W\\)"),
        (np.ones((1, 4, 32, 32), np.float32), "conv2d_0.*expected 3 input channels, got 4"),
        (np.ones((1, 3, 32, 32), np.float64), "dtype float32, got float64"),
        (np.ones((1, 3, 30, 30), np.float32), "dense_0.*expected 4096 input features, got 3600"),
        (np.full((1, 3, 32, 32), np.nan, np.float32), "NaN or Inf"),
        (np.ones((1, 3, 1, 1), np.float32), "maxpool2d_0.*smaller than the 2x2"),
        ([[1.0]], "expected an array"),
    ],
)
def test_bad_input_names_layer_and_expectation(x, match):
    with pytest.raises(MinicnnError, match=match):
        small_net().forward(x)


def test_backward_errors():
    net = small_net()
    with pytest.raises(MinicnnError, match="before forward"):
        net.backward(np.ones((1, 10), np.float32))
    net.forward(np.ones((1, 3, 32, 32), np.float32))
    with pytest.raises(MinicnnError, match="unknown backward mode 'deconv'"):
        net.backward(np.ones((1, 10), np.float32), mode="deconv")
    with pytest.raises(MinicnnError, match="must have shape \\(1, 10\\)"):
        net.backward(np.ones((1, 11), np.float32))
    with pytest.raises(MinicnnError, match="unknown layer"):
        net.backward(np.ones((1, 10), np.float32), start="fc9")


def test_vgg_structure_matches_keras_names_and_sizes():
    net = mc.vgg19(seed=0, include_top=False)
    convs = [n for n in net.names if "conv" in n and not n.endswith("relu")]
    assert len(convs) == 16 and convs[-1] == "block5_conv4"
    assert net.shapes((3, 224, 224))[-1] == (512, 7, 7)
    top = mc.vgg16(seed=0)
    assert top.num_params() == 138_357_544  # Keras's VGG16 parameter count
    assert top.names[-3:] == ["fc2", "fc2_relu", "predictions"]
