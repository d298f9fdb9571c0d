"""Keras full-model files (model.save("x.h5")) rebuilt by minicnn, against Keras 3's predictions.

Small custom chains cover valid and same padding, stride 2, non-square inputs and kernels' flatten
order, GlobalAveragePooling2D, Dropout, Activation layers, use_bias=False and a trailing softmax.
"""

from __future__ import annotations

import numpy as np
import pytest
from io_helpers import keras_scores, random_images, seed_weights
from support import assert_close

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.layers.softmax import softmax


def sequential_softmax(keras):
    """Same padding, stride 2, valid padding, Activation, Flatten, Dropout, trailing softmax."""
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((20, 20, 3)),
            L.Conv2D(8, 3, padding="same", activation="relu", name="c1"),
            L.Conv2D(8, 3, strides=2, padding="valid", activation="relu", name="c2"),
            L.MaxPooling2D(2, name="p1"),
            L.Conv2D(12, 5, padding="same", name="c3"),
            L.Activation("relu", name="act"),
            L.Flatten(name="flat"),
            L.Dropout(0.3, name="drop"),
            L.Dense(16, activation="relu", name="d1"),
            L.Dense(6, activation="softmax", name="out"),
        ],
        name="seq_softmax",
    )


def functional_gap(keras):
    """Grayscale input, stride-2 valid convolution, linear Activation, GlobalAveragePooling2D."""
    L = keras.layers
    x = inputs = keras.Input((17, 17, 1))
    x = L.Conv2D(6, 3, activation="relu", name="conv_a")(x)
    x = L.Conv2D(10, 3, strides=2, name="conv_b")(x)
    x = L.Activation("linear", name="lin")(x)
    x = L.ReLU(name="relu_b")(x)
    x = L.Conv2D(9, 1, name="conv_c")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(0.5, name="drop")(x)
    outputs = L.Dense(4, name="scores")(x)
    return keras.Model(inputs, outputs, name="func_gap")


def nonsquare_flatten(keras):
    """Non-square input and pooling with stride, use_bias=False, (H, W, C) flatten reordering."""
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((18, 30, 3)),
            L.Conv2D(4, 3, strides=2, activation="relu", name="k1"),
            L.MaxPooling2D((3, 3), strides=2, name="k1_pool"),
            L.Conv2D(5, 3, padding="same", use_bias=False, activation="relu", name="k2"),
            L.Flatten(name="k_flat"),
            L.Dense(7, name="k_out"),
        ],
        name="nonsquare",
    )


def nested_base(keras):
    """A fine-tuning setup: a Functional convolutional base nested in a Sequential classifier."""
    L = keras.layers
    x = inputs = keras.Input((16, 16, 3))
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="block1_conv1")(x)
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="block1_conv2")(x)
    x = L.MaxPooling2D(2, name="block1_pool")(x)
    base = keras.Model(inputs, x, name="base")
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            base,
            L.Flatten(name="flatten"),
            L.Dropout(0.5),
            L.Dense(8, activation="relu", name="fc1"),
            L.Dense(3, activation="softmax", name="predictions"),
        ],
        name="finetuned",
    )


BUILDERS = [sequential_softmax, functional_gap, nonsquare_flatten, nested_base]


@pytest.fixture(scope="module", params=BUILDERS, ids=lambda b: b.__name__)
def custom(request, keras, tmp_path_factory):
    """(keras model, path of model.save("x.h5"), images NHWC 0..255)."""
    model = request.param(keras)
    seed_weights(model, 7)
    path = tmp_path_factory.mktemp("custom") / f"{model.name}.h5"
    model.save(path)
    shape = model.input_shape[1:]
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 255, (3, *shape)).astype(np.float32)
    return model, path, images


def test_custom_model_matches_keras(keras, custom):
    model, path, images = custom
    net, fmt = mc.load(path, with_format=True)
    assert fmt == "keras-model"
    assert net.meta["input_shape"] == [model.input_shape[3], *model.input_shape[1:3]]
    probs, scores = keras_scores(keras, model, images)
    x = mc.preprocess(images, "none")
    out = net.forward(x)
    assert_close(out, scores, what=model.name)
    if net.meta["final_activation"] == "softmax":
        assert_close(softmax(out), probs, what=f"{model.name} softmax")
    # every Keras layer with weights is there under its own name, fused ReLUs split out
    flat = [la for m in model.layers for la in (m.layers if hasattr(m, "layers") else [m])]
    for layer in flat:
        if layer.get_weights():
            assert layer.name in net.names
        fused = layer.get_weights() and layer.get_config().get("activation") == "relu"
        if fused:
            assert net.names[net.index(layer.name) + 1] == f"{layer.name}_relu"


def test_sequential_softmax_layout(keras, tmp_path):
    model = sequential_softmax(keras)
    model.save(tmp_path / "m.h5")
    net = mc.load(tmp_path / "m.h5")
    assert net.meta["final_activation"] == "softmax"
    assert [layer.kind for layer in net.layers] == [
        "Conv2D", "ReLU", "Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "Flatten",
        "Dropout", "Dense", "ReLU", "Dense",
    ]  # fmt: skip
    assert net["c1"].padding == 1 and net["c2"].stride == 2 and net["c3"].padding == 2
    assert net["drop"].p == pytest.approx(0.3)


def _save(keras, tmp_path, layers, shape=(16, 16, 3)):
    model = keras.Sequential([keras.Input(shape), *layers], name="bad")
    path = tmp_path / "bad.h5"
    model.save(path)
    return path


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda L: [L.Conv2D(4, 3, strides=2, padding="same", name="sconv")], "sconv"),
        (lambda L: [L.Conv2D(4, 2, padding="same", name="even")], "odd square kernels"),
        (lambda L: [L.Conv2D(4, 3, name="c"), L.BatchNormalization(name="bn")], "BatchNormal"),
        (lambda L: [L.Conv2D(4, 3, activation="tanh", name="tanh_conv")], "tanh"),
        (lambda L: [L.Conv2D(4, 3, strides=(1, 2), name="uneven")], "strides"),
        (lambda L: [L.Flatten(), L.Dense(3, activation="softmax", name="sm"), L.Dense(2)], "softmax"),
        (lambda L: [L.MaxPooling2D(2, padding="same", name="pool_same")], "pool_same"),
    ],
    ids=["same-stride2", "same-even", "batchnorm", "tanh", "uneven-strides", "inner-softmax",
         "same-pool"],
)  # fmt: skip
def test_unsupported_keras_layers(keras, tmp_path, make, expected):
    path = _save(keras, tmp_path, make(keras.layers))
    with pytest.raises(MinicnnError, match=expected) as info:
        mc.load(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_random_images_helper_is_in_range():
    images = random_images(2, 32)
    assert images.min() >= 0 and images.max() <= 255 and images.std() > 20
