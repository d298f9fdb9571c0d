"""VGG16 and VGG19 (Simonyan & Zisserman 2014, table 1, configurations D and E).

Layer structure and names follow Keras (``block1_conv1`` ... ``block5_pool``, ``flatten``, ``fc1``,
``fc2``, ``predictions``), so Keras weight files map onto them one to one. ReLUs are separate layers
(``block1_conv1_relu``, ``fc1_relu``) so the three backward rules see them.
"""

from __future__ import annotations

from minicnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU
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
