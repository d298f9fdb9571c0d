"""minicnn: a from-scratch NumPy/CuPy CNN engine for studying what VGG-style networks learn.

Everything public is reachable as ``minicnn.<name>`` (``import minicnn as mc``). The table below is the
whole public API and says where each name lives; modules are imported on first use, so ``import
minicnn`` stays fast (the CLI and Numba's cached kernels pay only for what they touch).

Conventions, stated once for the whole package:
    activations NCHW, convolution weights OIHW, dense weights (out, in), float32 by default;
    Flatten uses (C, H, W) order; class scores are always the unnormalised scores before softmax.
"""

from __future__ import annotations

import importlib
import os

# OpenBLAS's idle threads spin for ~0.1 s after each matrix product, taking the cores from the Numba
# kernels that run between products (im2col was ~2x slower inside a VGG16 pass than alone). Let
# them sleep at once. It takes effect only when minicnn is imported before NumPy loads OpenBLAS
# (the CLI does so); a value the user set wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    # engine (issue 2)
    "Sequential": "minicnn.network",
    "PassRecord": "minicnn.record",
    "Conv2D": "minicnn.layers.conv",
    "ReLU": "minicnn.layers.relu",
    "MaxPool2D": "minicnn.layers.pool",
    "AvgPool2D": "minicnn.layers.avgpool",
    "AdaptiveAvgPool2D": "minicnn.layers.avgpool",
    "Dense": "minicnn.layers.dense",
    "Flatten": "minicnn.layers.reshape",
    "GlobalAvgPool2D": "minicnn.layers.gap",
    "Dropout": "minicnn.layers.dropout",
    "Softmax": "minicnn.layers.softmax",
    "vgg16": "minicnn.zoo",
    "vgg19": "minicnn.zoo",
    "MODES": "minicnn.layers.relu",
    # weights and images (issue 3)
    "load": "minicnn.io.loader",
    "save": "minicnn.io.native",
    "preprocess": "minicnn.io.preprocess",
    "deprocess": "minicnn.io.preprocess",
    "load_image": "minicnn.io.images",
    # gradient-based tools (issue 5)
    "saliency": "minicnn.tools.saliency",
    "reconstruct": "minicnn.tools.reconstruct",
    "equivalence": "minicnn.tools.equivalence",
    "occlusion": "minicnn.tools.occlusion",
    "cam": "minicnn.tools.cam",
    "grad_cam": "minicnn.tools.cam",
    # optimisation-based tools (issue 6)
    "class_model": "minicnn.tools.classmodel",
    "maximize": "minicnn.tools.maximize",
    "invert": "minicnn.tools.invert",
    "topk": "minicnn.tools.topk",
    "localize": "minicnn.tools.localize",
    # other frameworks' maps checked against minicnn's (issue 15)
    "verify": "minicnn.tools.verify",
    # the independent DeconvNet and the sanity checks of saliency methods (issue 14)
    "deconvnet": "minicnn.tools.deconvnet",
    "randomization_test": "minicnn.tools.sanity",
    "data_randomization_test": "minicnn.tools.sanity_data",
    "class_sensitivity": "minicnn.tools.sanity_checks",
    "image_recovery": "minicnn.tools.sanity_checks",
    "pointing_game": "minicnn.tools.sanity_pointing",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):
    try:
        module = _API[name]
    except KeyError:
        raise AttributeError(f"module 'minicnn' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return __all__
