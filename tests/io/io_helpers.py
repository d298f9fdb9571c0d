"""Helpers shared by the io tests (a plain module: ``from conftest import`` is ambiguous when
several test folders each have a conftest.py)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

import minicnn as mc


class Case(NamedTuple):
    path: object  # the model file
    x: np.ndarray  # minicnn input (N, C, H, W) float32
    expected: np.ndarray  # Keras's model.predict on the same images


def seed_weights(model, seed: int) -> None:
    """He-normal kernels and N(0, 0.05^2) biases, from a seeded generator, set on a Keras model."""
    rng = np.random.default_rng(seed)
    values = []
    for w in model.get_weights():
        if w.ndim > 1:
            fan_in = int(np.prod(w.shape[:-1]))
            values.append(rng.standard_normal(w.shape, np.float32) * np.float32(np.sqrt(2.0 / fan_in)))
        else:
            values.append(rng.standard_normal(w.shape, np.float32) * np.float32(0.05))
    model.set_weights(values)


def random_images(n: int, size: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """(n, size, size, channels) float32 images in 0..255 with some spatial structure."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (n, size // 8 + 1, size // 8 + 1, channels))
    smooth = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)[:, :size, :size]
    return np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.float32)


def predict(model, images_nhwc):
    return np.asarray(model.predict(images_nhwc, verbose=0, batch_size=len(images_nhwc)))


def small_net(dtype=np.float32):
    net = mc.Sequential(
        [
            mc.Conv2D(3, 6, 3, padding=1, name="conv_a"),
            mc.ReLU(name="relu_a"),
            mc.MaxPool2D(2, name="pool_a"),
            mc.Conv2D(6, 5, (3, 1), stride=2, name="conv_b"),
            mc.ReLU(),
            mc.GlobalAvgPool2D(),
            mc.Dropout(0.25),
            mc.Dense(5, 4, name="scores"),
        ],
        seed=3,
        meta={
            "input_shape": [3, 16, 16],
            "class_names": ["a", "b", "c", "d"],
            "preprocess": "unit",
            "final_activation": "softmax",
            "provenance": {"data": "toy", "seed": np.int64(3), "accuracy": np.float32(0.5)},
        },
        dtype=dtype,
    )
    rng = np.random.default_rng(0)
    for layer, key, value in net.parameters():  # non-zero biases too
        setattr(layer, key, (value + rng.normal(0, 0.1, value.shape)).astype(dtype))
    return net


def keras_scores(keras, model, images):
    """Keras's output, and its scores before a trailing softmax (penultimate output @ W + b)."""
    probs = predict(model, images)
    last = model.layers[-1]
    if last.get_config().get("activation") != "softmax":
        return probs, probs
    hidden = predict(keras.Model(model.inputs, model.layers[-2].output), images)
    kernel, bias = (np.asarray(w, np.float64) for w in last.get_weights())
    return probs, hidden.astype(np.float64) @ kernel + bias
