"""Layers: each file holds one operation as a pure forward/backward pair plus a thin layer object.

Every layer has ``forward(x, train=False, rng=None) -> (y, cache)`` and
``backward(dy, cache, need_params=False) -> (dx, grads)``; ``grads`` is a dict of parameter
gradients, or None unless ``need_params`` (visualisation needs only dL/dx). A layer whose backward a
rule changes (``reads_rule``: the ReLU; for LRP also the linear layers and Add) also takes
``mode=``, the backward rule (minicnn/rules.py; the LRP arithmetic is in relevance.py).
Every kind also declares what base.DECLARATIONS names (its DeconvNet reverse stage, its equivalence
row, its torch and Keras twins); tests/engine/test_layer_coverage.py walks LAYER_KINDS for them.
"""

from minicnn.layers.add import Add
from minicnn.layers.avgpool import AdaptiveAvgPool2D, AvgPool2D
from minicnn.layers.base import DECLARATIONS, Layer
from minicnn.layers.batchnorm import BatchNorm2D
from minicnn.layers.conv import Conv2D
from minicnn.layers.dense import Dense
from minicnn.layers.dropout import Dropout
from minicnn.layers.gap import GlobalAvgPool2D
from minicnn.layers.pool import MaxPool2D
from minicnn.layers.relu import ReLU
from minicnn.layers.reshape import Flatten
from minicnn.layers.softmax import Softmax
from minicnn.rules import MODES

#: kind name (as stored in files) -> layer class
LAYER_KINDS = {
    cls.kind: cls
    for cls in (
        Conv2D,
        ReLU,
        MaxPool2D,
        AvgPool2D,
        AdaptiveAvgPool2D,
        Dense,
        Flatten,
        Dropout,
        GlobalAvgPool2D,
        Softmax,
        BatchNorm2D,
        Add,
    )
}

__all__ = [
    "DECLARATIONS",
    "LAYER_KINDS",
    "AdaptiveAvgPool2D",
    "Add",
    "AvgPool2D",
    "BatchNorm2D",
    "MODES",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2D",
    "Layer",
    "MaxPool2D",
    "ReLU",
    "Softmax",
]
