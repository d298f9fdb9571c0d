"""torchvision's ResNet-18 ... 152 and wide ResNet-50-2/101-2 from a state dict's names and shapes.

The architecture is named before any weight is read.

torchvision.models.resnet names its modules

    conv1 bn1 (relu) (maxpool)               the stem: 7x7 stride 2, BatchNorm, 3x3 stride 2 max-pool
    layerS.J.conv1 .bn1 .conv2 .bn2           block J of stage S (S = 1..4): a BasicBlock ...
             [.conv3 .bn3]                    ... or a Bottleneck, which has a third convolution
    layerS.J.downsample.0 .downsample.1       the 1x1 projection shortcut and its BatchNorm
    fc                                        Linear(C, K) after global average pooling

Every convolution is bias-free and followed by a BatchNorm, which is folded into it here
(minicnn/io/fold_batchnorm.py, eps = 1e-5: torch's default, which a state dict does not store).
The number of blocks per stage, the presence of ``conv3`` and the inner width of
``layer1.0.conv1`` name the architecture (minicnn.zoo.RESNETS, INNER_WIDTH); the graph is
minicnn.zoo's, without BatchNorm layers, so layer names are torchvision's module paths
(``layer4.1`` is the block's output, as ``model.layer4[1]`` is).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from minicnn.errors import MinicnnError, quote
from minicnn.io.fold_batchnorm import fold_batchnorm
from minicnn.io.h5common import assign
from minicnn.io.imagenet import class_names as imagenet_class_names

_BLOCK = re.compile(r"layer([1-4])\.(\d{1,4})\.", re.ASCII)
_STATS = ("weight", "bias", "running_mean", "running_var")
EXPECTED = "torchvision ResNet keys conv1, bn1, layer{1-4}.J.{conv,bn}{1,2[,3]}[.downsample.{0,1}] and fc"


def looks_like_resnet(names) -> bool:
    """True when the state dict's keys are a torchvision ResNet's (used to pick a reader)."""
    names = set(names)
    return "conv1.weight" in names and "bn1.running_mean" in names and "layer1.0.conv1.weight" in names


def _bn_of(conv: str) -> str:
    """The BatchNorm torchvision places after convolution ``conv``: conv1 -> bn1, downsample.0 -> .1."""
    if conv.endswith("downsample.0"):
        return conv[:-1] + "1"
    head, _, last = conv.rpartition("conv")
    return f"{head}bn{last}"


def architecture(shapes) -> str:
    """The RESNETS name whose blocks per stage (and block type) the keys describe."""
    from minicnn.zoo import INNER_WIDTH, RESNETS

    blocks = [0, 0, 0, 0]
    for key in shapes:
        m = _BLOCK.match(key)
        if m:
            stage, j = int(m.group(1)) - 1, int(m.group(2))
            blocks[stage] = max(blocks[stage], j + 1)
    bottleneck = "layer1.0.conv3.weight" in shapes
    # a wide ResNet differs from its plain twin only in the inner width: layer1's first 1x1 gives
    # 64 x INNER_WIDTH channels
    inner = shapes.get("layer1.0.conv1.weight", (64,))[0] // 64 if bottleneck else 1
    for name, (counts, kind) in RESNETS.items():
        if tuple(blocks) == counts and kind == bottleneck and INNER_WIDTH.get(name, 1) == inner:
            return name
    raise MinicnnError(
        f"a ResNet with {'Bottleneck' if bottleneck else 'BasicBlock'}s per stage {tuple(blocks)}: "
        f"expected one of {', '.join(f'{n} {c}' for n, (c, _) in RESNETS.items())}"
    )


def build_resnet(shapes: dict, read: Callable[[str], np.ndarray], source: str):
    """The Graph a torchvision ResNet state dict describes, with its weights (BatchNorm folded).

    shapes: every tensor name -> shape; read(name) -> that tensor as a NumPy array, called only
    after every name and shape was checked (a missing, surplus or misshapen tensor fails first).
    Returns a float32 Graph; meta: architecture, input_shape [3, 224, 224], preprocess "torch",
    class_names (ImageNet's when fc has 1000 outputs), source, batchnorm_folded.
    """
    from minicnn.graph import Graph
    from minicnn.zoo import resnet_nodes

    shapes = {k: tuple(int(d) for d in v) for k, v in shapes.items()}
    name = architecture(shapes)
    fc = shapes.get("fc.weight", ())
    if len(fc) != 2:
        raise MinicnnError(f"fc.weight should be 2-D (classes, features), found {quote(fc)}")
    nodes, meta = resnet_nodes(name, num_classes=fc[0], batchnorm=False)
    layers = [n[0] if isinstance(n, tuple) else n for n in nodes]
    expected, sources = {}, []
    for layer in layers:
        if not layer.has_params:
            continue
        wanted = layer.param_shapes()
        if layer.is_convolution:
            expected[f"{layer.name}.weight"] = wanted["weight"]
            bn = _bn_of(layer.name)
            expected.update({f"{bn}.{field}": wanted["bias"] for field in _STATS})
            sources.append((layer, bn))
        else:
            expected.update({f"{layer.name}.{k}": v for k, v in wanted.items()})
            sources.append((layer, None))
    for key, shape in expected.items():
        if key not in shapes:
            raise MinicnnError(f"missing {key} (expected shape {shape}) in a {name} state dict")
        if shapes[key] != tuple(shape):
            raise MinicnnError(f"{key} should have shape {tuple(shape)} in a {name}, found {shapes[key]}")
    tracked = {
        k for k in shapes if k.endswith(".num_batches_tracked") and f"{k[:-20]}.running_mean" in expected
    }
    surplus = sorted(set(shapes) - set(expected) - tracked)
    if surplus:
        raise MinicnnError(
            f"unexpected key {quote(surplus[0])} (shape {quote(shapes[surplus[0]])}); expected {EXPECTED}"
        )
    for layer, bn in sources:
        if bn is None:
            assign(layer, {k: read(f"{layer.name}.{k}") for k in layer.param_shapes()})
        else:
            stats = [read(f"{bn}.{field}") for field in _STATS]
            weight, bias = fold_batchnorm(read(f"{layer.name}.weight"), None, *stats)
            assign(layer, {"weight": weight.astype(np.float32), "bias": bias.astype(np.float32)})
    meta.update({"source": source, "layout": "torchvision", "batchnorm_folded": True})
    if fc[0] == 1000:
        meta["class_names"] = imagenet_class_names()
    return Graph(nodes, meta=meta)
