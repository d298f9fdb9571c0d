"""Fixtures for the tool tests: a random VGG16, small VGG-style nets, the shipped digit models."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn.paths import DEFAULT_MODEL, GAP_MODEL, WEIGHTS_DIR


@pytest.fixture(scope="session")
def vgg16():
    """mc.vgg16(seed=0), 224x224, built once per test session (tools never modify weights)."""
    return mc.vgg16(seed=0)


@pytest.fixture(scope="session")
def vgg_image():
    """Two 224x224 images in VGG's input range (mean-subtracted pixels, roughly +-100)."""
    rng = np.random.default_rng(3)
    return (rng.standard_normal((2, 3, 224, 224)) * 50).astype(np.float32)


def small_vgg(seed=0, channels=3, size=16, classes=5, gap=False):
    """A small VGG-style net: conv blocks, then dense layers (or conv-ReLU-GAP-dense if gap)."""
    layers = [
        mc.Conv2D(channels, 6, 3, padding=1), mc.ReLU(), mc.Conv2D(6, 6, 3, padding=1), mc.ReLU(),
        mc.MaxPool2D(2), mc.Conv2D(6, 8, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2),
    ]  # fmt: skip
    s = size // 4
    if gap:
        layers += [
            mc.Conv2D(8, 10, 3, padding=1),
            mc.ReLU(),
            mc.GlobalAvgPool2D(),
            mc.Dense(10, classes),
        ]
    else:
        layers += [
            mc.Flatten(),
            mc.Dense(8 * s * s, 16),
            mc.ReLU(),
            mc.Dropout(0.5),
            mc.Dense(16, classes),
        ]
    return mc.Sequential(layers, seed=seed, meta={"input_shape": [channels, size, size]})


@pytest.fixture(scope="module")
def small_net():
    return small_vgg(seed=1)


@pytest.fixture(scope="module")
def small_images():
    return np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(np.float32)


def shipped(path):
    """Load a shipped digit model, or skip while it has not been trained and committed yet."""
    if not path.exists():
        pytest.skip(f"{path.name} not shipped yet (weights/ is filled by the training issue)")
    return mc.load(path)


@pytest.fixture(scope="session")
def digit_net():
    return shipped(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def gap_net():
    return shipped(GAP_MODEL)


def digit_images(net, n=4, seed=0):
    """n held-out digits (weights/mnist_heldout.npz, /255 like the "unit" preprocessing), starting at
    a seeded offset; (n, 1, 28, 28) of net.dtype."""
    with np.load(WEIGHTS_DIR / "mnist_heldout.npz") as f:
        images = f["images"]
    start = int(np.random.default_rng(seed).integers(0, len(images) - n))
    return (images[start : start + n, None] / 255.0).astype(net.dtype)


@pytest.fixture(scope="session")
def make_small_vgg():
    """The ``small_vgg`` factory, for tests that need several variants."""
    return small_vgg


@pytest.fixture(scope="session")
def make_digit_images():
    return digit_images
