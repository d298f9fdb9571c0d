"""Small float64 networks for the tests of the LRP and DeepLIFT rules (tests/tools/test_lrp_*.py,
test_deeplift_*.py): VGG-style chains with biases, optionally with BatchNorm kept as a layer."""

from __future__ import annotations

import numpy as np
from support import biased

import minicnn as mc


def vgg_with(batchnorm: bool, seed=0):
    """A small VGG-style float64 net with biases (and BatchNorm layers with random statistics)."""
    rng = np.random.default_rng(seed)

    def block(cin, cout, name):
        layers = [mc.Conv2D(cin, cout, 3, padding=1, name=f"{name}_conv")]
        if batchnorm:
            layers.append(mc.BatchNorm2D(cout, name=f"{name}_bn"))
        return layers + [mc.ReLU(name=f"{name}_relu")]

    layers = [
        *block(3, 6, "b1"), mc.MaxPool2D(2, name="pool1"), *block(6, 8, "b2"), mc.MaxPool2D(2, name="pool2"),
        *block(8, 8, "b3"), mc.AvgPool2D(2, name="avg"), mc.Flatten(name="flat"),
        mc.Dense(32, 12, name="fc1"), mc.ReLU(name="fc1_relu"), mc.Dropout(0.5, name="drop"),
        mc.Dense(12, 5, name="fc2"),
    ]  # fmt: skip
    net = biased(mc.Sequential(layers, seed=seed), seed)
    for layer in net.layers:
        if isinstance(layer, mc.BatchNorm2D):
            c = layer.channels
            layer.weight, layer.bias = rng.uniform(0.5, 1.5, c), rng.uniform(-0.3, 0.3, c)
            layer.running_mean, layer.running_var = rng.normal(0, 0.5, c), rng.uniform(0.3, 3.0, c)
    return net
