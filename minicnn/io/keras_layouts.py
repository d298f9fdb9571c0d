"""The keras.applications ResNet layouts, rebuilt from layer names for weight-only files.

A weight-only Keras file (``model.save_weights``) holds arrays by layer name and no architecture.
When the names are keras.applications ResNet's, the model_config that Keras would have written is
rebuilt here and read by minicnn.io.keras_resnet like a full-model file's:

    ResNet50 / 101 / 152      (He et al. 2016, v1: the stride on a stage's first 1x1 convolution)
        conv -> BatchNorm -> ReLU after every convolution; sum, then ReLU (``convN_blockJ_out``).
    ResNet50V2 / 101V2 / 152V2  (He et al. 2016b, "Identity mappings": pre-activation)
        each block starts with BatchNorm -> ReLU (``_preact_bn``) read by both branches' first
        convolutions; the sum is the block's output, the stride is on the last block of a stage
        (its identity shortcut a 1x1 max pooling of stride 2); ``post_bn`` -> ``post_relu`` at the end.

The depth comes from the blocks per stage (``DEPTHS``), the top from a ``predictions`` layer.
Inputs are written as Keras 2 inbound_nodes ([name, 0, 0, {}]).
"""

from __future__ import annotations

DEPTHS = {(3, 4, 6, 3): "resnet50", (3, 4, 23, 3): "resnet101", (3, 8, 36, 3): "resnet152"}
WIDTHS = (64, 128, 256, 512)  # filters of the bottleneck's 1x1 and 3x3 convolutions per stage; x4 out
EPSILON = 1.001e-5  # every BatchNormalization of keras.applications' ResNets


def looks_like_resnet(names) -> bool:
    """True when the weight file's layer names are keras.applications ResNet's (v1 or v2)."""
    return "conv1_conv" in names and "conv2_block1_0_conv" in names


def is_preactivation(names) -> bool:
    """True when the names are a ResNetV2's (its blocks start with ``_preact_bn``)."""
    return "conv2_block1_preact_bn" in names


def blocks_per_stage(names) -> tuple:
    """(n2, n3, n4, n5): how many ``convS_blockJ_1_conv`` layers each stage has."""
    return tuple(sum(1 for j in range(1, 64) if f"conv{s}_block{j}_1_conv" in names) for s in (2, 3, 4, 5))


class _Specs:
    """A list of Keras layer specs written in order, each reading names given before it."""

    def __init__(self):
        self.specs = []

    def add(self, cls, name, reads, **cfg):
        inbound = [[[r, 0, 0, {}] for r in reads]] if reads else []
        self.specs.append({"class_name": cls, "config": {"name": name, **cfg}, "inbound_nodes": inbound})
        return name

    def conv(self, name, reads, filters, kernel, stride=1, padding="valid"):
        return self.add("Conv2D", name, [reads], filters=filters, kernel_size=kernel, strides=stride,
                        padding=padding, activation="linear")  # fmt: skip

    def bn(self, name, reads):
        return self.add("BatchNormalization", name, [reads], epsilon=EPSILON)

    def relu(self, name, reads):
        return self.add("Activation", name, [reads], activation="relu")

    def unit(self, name, reads, filters, kernel, stride=1, padding="valid", relu=True):
        """``name``_conv -> ``name``_bn [-> ``name``_relu]: a convolution and the BatchNorm after it."""
        x = self.bn(f"{name}_bn", self.conv(f"{name}_conv", reads, filters, kernel, stride, padding))
        return self.relu(f"{name}_relu", x) if relu else x

    def stem(self, size: int, preact: bool):
        x = self.add("InputLayer", "input_layer", [], batch_shape=[None, size, size, 3])
        x = self.add("ZeroPadding2D", "conv1_pad", [x], padding=[[3, 3], [3, 3]])
        x = self.unit("conv1", x, 64, 7, 2) if not preact else self.conv("conv1_conv", x, 64, 7, 2)
        x = self.add("ZeroPadding2D", "pool1_pad", [x], padding=[[1, 1], [1, 1]])
        return self.add("MaxPooling2D", "pool1_pool", [x], pool_size=3, strides=2)

    def config(self, x, classes, name):
        if classes is not None:
            x = self.add("GlobalAveragePooling2D", "avg_pool", [x])
            self.add("Dense", "predictions", [x], units=classes, activation="softmax")
        name += "" if classes is not None else "_notop"
        return {"class_name": "Functional", "config": {"name": name, "layers": self.specs}}


def resnet_config(blocks: tuple, classes: int | None, size: int = 224) -> dict:
    """The model_config of keras.applications.ResNet50/101/152 with ``blocks`` blocks per stage;
    ``classes`` None: no top (the last block's output)."""
    k = _Specs()
    x = k.stem(size, preact=False)
    for stage, (count, filters) in enumerate(zip(blocks, WIDTHS), start=2):
        for j in range(1, count + 1):
            name, stride = f"conv{stage}_block{j}", 2 if stage > 2 and j == 1 else 1
            shortcut = k.unit(f"{name}_0", x, 4 * filters, 1, stride, relu=False) if j == 1 else x
            y = k.unit(f"{name}_1", x, filters, 1, stride)
            y = k.unit(f"{name}_3", k.unit(f"{name}_2", y, filters, 3, 1, "same"), 4 * filters, 1, relu=False)
            x = k.relu(f"{name}_out", k.add("Add", f"{name}_add", [shortcut, y]))
    return k.config(x, classes, DEPTHS[tuple(blocks)])


def resnet_v2_config(blocks: tuple, classes: int | None, size: int = 224) -> dict:
    """The model_config of keras.applications.ResNet50V2/101V2/152V2 with ``blocks`` blocks per
    stage; ``classes`` None: no top (``post_relu``)."""
    k = _Specs()
    x = k.stem(size, preact=True)
    for stage, (count, filters) in enumerate(zip(blocks, WIDTHS), start=2):
        for j in range(1, count + 1):
            name = f"conv{stage}_block{j}"
            stride = 2 if stage < 5 and j == count else 1  # the last block of stages 2-4 halves the map
            pre = k.relu(f"{name}_preact_relu", k.bn(f"{name}_preact_bn", x))
            if j == 1:
                shortcut = k.conv(f"{name}_0_conv", pre, 4 * filters, 1, stride)
            elif stride > 1:
                shortcut = k.add("MaxPooling2D", f"{name}_shortcut_pool", [x], pool_size=1, strides=stride)
            else:
                shortcut = x
            y = k.add("ZeroPadding2D", f"{name}_2_pad", [k.unit(f"{name}_1", pre, filters, 1)], padding=1)
            y = k.conv(f"{name}_3_conv", k.unit(f"{name}_2", y, filters, 3, stride), 4 * filters, 1)
            x = k.add("Add", f"{name}_out", [shortcut, y])
    x = k.relu("post_relu", k.bn("post_bn", x))
    return k.config(x, classes, DEPTHS[tuple(blocks)] + "v2")
