"""VGG16 and VGG19 (Simonyan & Zisserman 2014, table 1, configurations D and E), and ResNets.

VGG's layer structure and names follow Keras (``block1_conv1`` ... ``block5_pool``, ``flatten``,
``fc1``, ``fc2``, ``predictions``), so Keras weight files map onto them one to one. ReLUs are
separate layers (``block1_conv1_relu``, ``fc1_relu``) so the three backward rules see them.

ResNet-18/34/50/101/152 (He et al. 2016, table 1) and the wide ResNet-50-2/101-2 (Zagoruyko &
Komodakis 2016, torchvision's layout) are graphs (minicnn/graph.py): each residual
block adds its input, or a strided 1x1 projection of it (``downsample``), to the output of two 3x3
convolutions (BasicBlock) or of 1x1, 3x3, 1x1 convolutions four times wider at the end
(Bottleneck). Names are torchvision's module paths (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0``, ``fc``); the ReLUs torchvision shares inside a block are
``layer1.0.relu1`` (and ``relu2``), the sum is ``layer1.0.add``, and the ReLU after it, the
block's output (torchvision's ``model.layer1[0]``), is ``layer1.0``.
"""

from __future__ import annotations

from minicnn.graph import Graph
from minicnn.layers import Add, BatchNorm2D, Conv2D, Dense, Flatten, GlobalAvgPool2D, MaxPool2D, ReLU
from minicnn.network import Sequential

# convolutions per block; every block ends in a 2x2 max-pool
_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_WIDTHS = (64, 128, 256, 512, 512)


def vgg_layers(name: str, include_top=True, num_classes=1000, input_size=224):
    """(layers, meta) of VGG ``name`` without parameters, for loaders that set them directly
    (initialising 138M parameters only to overwrite them takes seconds)."""
    layers, channels = [], 3
    for block, (convs, width) in enumerate(zip(_BLOCKS[name], _WIDTHS), start=1):
        for i in range(1, convs + 1):
            conv = f"block{block}_conv{i}"
            layers += [Conv2D(channels, width, 3, padding=1, name=conv), ReLU(name=f"{conv}_relu")]
            channels = width
        layers.append(MaxPool2D(2, name=f"block{block}_pool"))
    if include_top:
        layers += [
            Flatten(name="flatten"),
            Dense(512 * 7 * 7, 4096, name="fc1"),
            ReLU(name="fc1_relu"),
            Dense(4096, 4096, name="fc2"),
            ReLU(name="fc2_relu"),
            Dense(4096, num_classes, name="predictions"),
        ]
    meta = {
        "architecture": name if include_top else f"{name}_notop",
        "input_shape": [3, input_size, input_size],
        "preprocess": "caffe",
    }
    return layers, meta


def vgg(name: str, seed=None, include_top=True, num_classes=1000, input_size=224):
    """Build VGG ``name`` ("vgg16" or "vgg19") with seeded He initialisation.

    Input (N, 3, input_size, input_size), caffe preprocessing (BGR, mean-subtracted) as Keras's
    weights expect. With ``include_top`` the output is (N, num_classes) scores before softmax, and
    input_size must be 224; without it the output is the block5 feature map (N, 512, H/32, W/32).
    """
    layers, meta = vgg_layers(name, include_top, num_classes, input_size)
    return Sequential(layers, seed=seed, meta=meta)


def vgg16(seed=None, include_top=True, num_classes=1000, input_size=224):
    """VGG16: 13 conv layers in 5 blocks + 3 dense layers (138M parameters with the top)."""
    return vgg("vgg16", seed, include_top, num_classes, input_size)


def vgg19(seed=None, include_top=True, num_classes=1000, input_size=224):
    """VGG19: 16 conv layers in 5 blocks + 3 dense layers (144M parameters with the top)."""
    return vgg("vgg19", seed, include_top, num_classes, input_size)


# residual blocks per stage, and whether they are Bottleneck blocks (He et al. 2016, table 1)
RESNETS = {
    "resnet18": ((2, 2, 2, 2), False),
    "resnet34": ((3, 4, 6, 3), False),
    "resnet50": ((3, 4, 6, 3), True),
    "resnet101": ((3, 4, 23, 3), True),
    "resnet152": ((3, 8, 36, 3), True),
    "wide_resnet50_2": ((3, 4, 6, 3), True),
    "wide_resnet101_2": ((3, 4, 23, 3), True),
}

# Wide ResNets (Zagoruyko & Komodakis 2016, as torchvision builds them): the Bottleneck's two inner
# convolutions are this many times wider; the block's output (4 x the stage width) is unchanged.
INNER_WIDTH = {"wide_resnet50_2": 2, "wide_resnet101_2": 2}


def _conv_bn(nodes, cin, cout, k, stride, name, bn_name, batchnorm, reads=None):
    """A bias-free torchvision convolution and its BatchNorm; with ``batchnorm`` False the
    BatchNorm is left out (a loader folds it into the convolution's weights and bias)."""
    conv = Conv2D(cin, cout, k, stride=stride, padding=k // 2, name=name)
    nodes.append(conv if reads is None else (conv, reads))
    if not batchnorm:
        return conv
    nodes.append(BatchNorm2D(cout, name=bn_name))
    return nodes[-1]


def _block(nodes, block, cin, width, stride, bottleneck, batchnorm, inner=1) -> int:
    """Append residual block ``block`` ("layer2.0") reading the node before it; returns its output
    channels. ``inner``: how many times wider a Bottleneck's inner convolutions are (wide ResNets)."""
    entry = nodes[-1][0].name if isinstance(nodes[-1], tuple) else nodes[-1].name
    if bottleneck:  # 1x1 reduce, 3x3 (strided, as torchvision's v1.5), 1x1 expand to 4 x width
        mid = inner * width
        convs = ((cin, mid, 1, 1), (mid, mid, 3, stride), (mid, 4 * width, 1, 1))
    else:
        convs = ((cin, width, 3, stride), (width, width, 3, 1))
    for i, (a, b, k, s) in enumerate(convs, start=1):
        _conv_bn(nodes, a, b, k, s, f"{block}.conv{i}", f"{block}.bn{i}", batchnorm)
        if i < len(convs):
            nodes.append(ReLU(name=f"{block}.relu{i}"))
    main = nodes[-1].name
    cout = convs[-1][1]
    shortcut = entry
    if stride != 1 or cin != cout:  # the projection shortcut (He et al. 2016, eq. 2; option B)
        names = (f"{block}.downsample.0", f"{block}.downsample.1")
        shortcut = _conv_bn(nodes, cin, cout, 1, stride, *names, batchnorm, reads=entry).name
    nodes.append((Add(name=f"{block}.add"), (main, shortcut)))
    nodes.append(ReLU(name=block))
    return cout


def resnet_nodes(name: str, num_classes=1000, input_size=224, batchnorm=True):
    """(graph nodes, meta) of ResNet ``name`` without parameters, for builders and loaders.

    batchnorm: keep the BatchNorm layers (a random network, torchvision's layers one to one);
    False leaves them out for a loader that folds each into the convolution before it."""
    counts, bottleneck = RESNETS[name]
    nodes = []
    _conv_bn(nodes, 3, 64, 7, 2, "conv1", "bn1", batchnorm)
    nodes += [ReLU(name="relu"), MaxPool2D(3, stride=2, padding=1, name="maxpool")]
    channels = 64
    for stage, (count, width) in enumerate(zip(counts, (64, 128, 256, 512)), start=1):
        for j in range(count):
            stride = 2 if stage > 1 and j == 0 else 1
            inner = INNER_WIDTH.get(name, 1)
            channels = _block(
                nodes, f"layer{stage}.{j}", channels, width, stride, bottleneck, batchnorm, inner
            )
    nodes += [GlobalAvgPool2D(name="avgpool"), Dense(channels, num_classes, name="fc")]
    meta = {"architecture": name, "input_shape": [3, input_size, input_size], "preprocess": "torch"}
    return nodes, meta


def resnet(name: str, seed=None, num_classes=1000, input_size=224, dtype=None):
    """Build ResNet ``name`` (a key of RESNETS) with seeded He initialisation and BatchNorm in
    torch's initial state. Input (N, 3, H, W) with torch preprocessing; output (N, num_classes)
    scores before softmax, for any H, W of at least 32 (global average pooling)."""
    import numpy as np

    nodes, meta = resnet_nodes(name, num_classes, input_size)
    return Graph(nodes, seed=seed, meta=meta, dtype=np.float32 if dtype is None else dtype)


def resnet18(seed=None, num_classes=1000, input_size=224, dtype=None):
    """ResNet-18: BasicBlocks (2, 2, 2, 2), 11.7M parameters."""
    return resnet("resnet18", seed, num_classes, input_size, dtype)


def resnet34(seed=None, num_classes=1000, input_size=224, dtype=None):
    """ResNet-34: BasicBlocks (3, 4, 6, 3), 21.8M parameters."""
    return resnet("resnet34", seed, num_classes, input_size, dtype)


def resnet50(seed=None, num_classes=1000, input_size=224, dtype=None):
    """ResNet-50: Bottleneck blocks (3, 4, 6, 3), 25.6M parameters."""
    return resnet("resnet50", seed, num_classes, input_size, dtype)


def resnet101(seed=None, num_classes=1000, input_size=224, dtype=None):
    """ResNet-101: Bottleneck blocks (3, 4, 23, 3), 44.5M parameters."""
    return resnet("resnet101", seed, num_classes, input_size, dtype)


def resnet152(seed=None, num_classes=1000, input_size=224, dtype=None):
    """ResNet-152: Bottleneck blocks (3, 8, 36, 3), 60.2M parameters."""
    return resnet("resnet152", seed, num_classes, input_size, dtype)


def wide_resnet50_2(seed=None, num_classes=1000, input_size=224, dtype=None):
    """Wide ResNet-50-2: ResNet-50 with inner convolutions twice as wide, 68.9M parameters."""
    return resnet("wide_resnet50_2", seed, num_classes, input_size, dtype)


def wide_resnet101_2(seed=None, num_classes=1000, input_size=224, dtype=None):
    """Wide ResNet-101-2: ResNet-101 with inner convolutions twice as wide, 126.9M parameters."""
    return resnet("wide_resnet101_2", seed, num_classes, input_size, dtype)
