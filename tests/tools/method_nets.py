"""Small networks for the attribution-method tests (a plain module: ``from conftest import`` is
ambiguous when several test folders have a conftest.py)."""

from __future__ import annotations

import minicnn as mc


def small_vgg(seed=0, channels=3, size=16, classes=5):
    """conv-ReLU-conv-ReLU-maxpool-conv-ReLU-maxpool-flatten-dense-ReLU-dropout-dense, He weights
    and zero biases (the layout of tests/tools/conftest.py's small_vgg)."""
    s = size // 4
    layers = [
        mc.Conv2D(channels, 6, 3, padding=1), mc.ReLU(), mc.Conv2D(6, 6, 3, padding=1), mc.ReLU(),
        mc.MaxPool2D(2), mc.Conv2D(6, 8, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2),
        mc.Flatten(), mc.Dense(8 * s * s, 16), mc.ReLU(), mc.Dropout(0.5), mc.Dense(16, classes),
    ]  # fmt: skip
    return mc.Sequential(layers, seed=seed, meta={"input_shape": [channels, size, size]})
