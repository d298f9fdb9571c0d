"""minicnn: a from-scratch NumPy/CuPy CNN engine for studying what VGG-style networks learn.

Everything public is reachable as ``minicnn.<name>`` (``import minicnn as mc``). The table below is the
whole public API and says where each name lives; modules are imported on first use, so ``import
minicnn`` stays fast (the CLI and Numba's cached kernels pay only for what they touch) and changes
nothing in the host process: no environment variable, allocator setting or threading layer. The
settings that speed passes up are applied by ``minicnn.tune_process()`` when a program asks for them
(the ``minicnn`` command does).

Conventions, stated once for the whole package:
    activations NCHW, convolution weights OIHW, dense weights (out, in), float32 by default;
    Flatten uses (C, H, W) order; class scores are always the unnormalised scores before softmax.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    # engine
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
    "BatchNorm2D": "minicnn.layers.batchnorm",
    "Add": "minicnn.layers.add",
    "Graph": "minicnn.graph",
    "GraphRecord": "minicnn.graph",
    "vgg16": "minicnn.zoo",
    "vgg19": "minicnn.zoo",
    "resnet18": "minicnn.zoo",
    "resnet34": "minicnn.zoo",
    "resnet50": "minicnn.zoo",
    "resnet101": "minicnn.zoo",
    "resnet152": "minicnn.zoo",
    "wide_resnet50_2": "minicnn.zoo",
    "wide_resnet101_2": "minicnn.zoo",
    "MODES": "minicnn.rules",
    # the one exception minicnn raises for bad input (catch ``mc.MinicnnError``)
    "MinicnnError": "minicnn.errors",
    # weights and images
    "load": "minicnn.io.loader",
    "save": "minicnn.io.native",
    "preprocess": "minicnn.io.preprocess",
    "deprocess": "minicnn.io.preprocess",
    "load_image": "minicnn.io.images",
    # gradient-based tools
    "saliency": "minicnn.tools.saliency",
    "reconstruct": "minicnn.tools.reconstruct",
    "equivalence": "minicnn.tools.equivalence",
    "occlusion": "minicnn.tools.occlusion",
    "cam": "minicnn.tools.cam",
    "grad_cam": "minicnn.tools.cam",
    "integrated_gradients": "minicnn.tools.integrated_gradients",
    "completeness_gap": "minicnn.tools.integrated_gradients",
    "excitation_backprop": "minicnn.tools.excitation",
    "guided_grad_cam": "minicnn.tools.guided_gradcam",
    "lrp": "minicnn.tools.lrp",
    "deeplift": "minicnn.tools.deeplift",
    # backward rule values (minicnn/rules.py): LRP rules, composites, DeepLIFT
    "LRP0": "minicnn.rules",
    "Epsilon": "minicnn.rules",
    "Gamma": "minicnn.rules",
    "ZPlus": "minicnn.rules",
    "AlphaBeta": "minicnn.rules",
    "Flat": "minicnn.rules",
    "WSquare": "minicnn.rules",
    "ZBox": "minicnn.rules",
    "Composite": "minicnn.rules",
    "COMPOSITES": "minicnn.rules",
    "DeepLift": "minicnn.rules",
    # optimisation-based tools
    "class_model": "minicnn.tools.classmodel",
    "maximize": "minicnn.tools.maximize",
    "invert": "minicnn.tools.invert",
    "topk": "minicnn.tools.topk",
    "localize": "minicnn.tools.localize",
    # other frameworks' maps checked against minicnn's
    "verify": "minicnn.tools.verify",
    # the independent DeconvNet and the sanity checks of saliency methods
    "deconvnet": "minicnn.tools.deconvnet",
    "randomization_test": "minicnn.tools.sanity",
    "data_randomization_test": "minicnn.tools.sanity_data",
    "class_sensitivity": "minicnn.tools.sanity_checks",
    "image_recovery": "minicnn.tools.sanity_checks",
    "pointing_game": "minicnn.tools.sanity_pointing",
    "smooth_mprt": "minicnn.tools.sanity_mprt",
    "efficient_mprt": "minicnn.tools.sanity_mprt",
    "random_logit": "minicnn.tools.sanity_mprt",
    # faithfulness: perturbation curves, ROAD, completeness
    "deletion": "minicnn.tools.faithfulness",
    "insertion": "minicnn.tools.faithfulness",
    "pixel_flipping": "minicnn.tools.faithfulness",
    "region_perturbation": "minicnn.tools.faithfulness",
    "road": "minicnn.tools.faithfulness_road",
    "completeness": "minicnn.tools.faithfulness_completeness",
    "input_invariance": "minicnn.tools.input_invariance",
    # process-wide settings, applied only when asked (minicnn/process.py)
    "tune_process": "minicnn.process",
    # memory a process may keep for speed: transformed convolution kernels (kernels/kernel_cache.py)
    "set_kernel_cache_limit": "minicnn.kernels.kernel_cache",
    "kernel_cache_limit": "minicnn.kernels.kernel_cache",
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
