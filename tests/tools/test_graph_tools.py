"""Tools on graph networks (residual blocks): receptive fields, Captum's references, the
equivalence table, Grad-CAM's default layer and occlusion, each against an independent reference.

References: brute-force perturbation (receptive fields: perturb one input pixel, see which units
change), Captum on a torch module that runs the nodes in order (float64), torch autograd, CAM
(Zhou et al. 2016) where Grad-CAM reduces to it (Selvaraju et al. 2017, sec. 3.1), and a naive
occlusion loop.
"""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.tools.topk import receptive_field, unit_boxes


def small_resnet(seed=0, channels=1, width=8):
    """A stem with a padded max-pool, a block with a 1x1 stride-2 projection shortcut and one with
    an identity shortcut, global average pooling and a classifier: a miniature ResNet, float64."""
    w = width
    nodes = [
        mc.Conv2D(channels, w, 3, padding=1, name="conv1"),
        mc.ReLU(name="relu"),
        mc.MaxPool2D(3, stride=2, padding=1, name="maxpool"),
        mc.Conv2D(w, w, 3, stride=2, padding=1, name="b1.conv1"),
        mc.ReLU(name="b1.relu1"),
        mc.Conv2D(w, w, 3, padding=1, name="b1.conv2"),
        (mc.Conv2D(w, w, 1, stride=2, name="b1.downsample"), "maxpool"),
        (mc.Add(name="b1.add"), ("b1.conv2", "b1.downsample")),
        mc.ReLU(name="b1"),
        mc.Conv2D(w, w, 3, padding=1, name="b2.conv1"),
        mc.ReLU(name="b2.relu1"),
        mc.Conv2D(w, w, 3, padding=1, name="b2.conv2"),
        (mc.Add(name="b2.add"), ("b2.conv2", "b1")),
        mc.ReLU(name="b2"),
        mc.GlobalAvgPool2D(name="avgpool"),
        mc.Dense(w, 5, name="fc"),
    ]
    net = mc.Graph(nodes, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if "bias" in layer.params:
            layer.bias = rng.uniform(-0.3, 0.3, layer.bias.shape)
    return net


# -- receptive fields ---------------------------------------------------------------------------
def perturbed_boxes(net, layer, shape):
    """Per unit (y, x) of ``layer``: the bounding box (x0, y0, x1, y1) of the input pixels whose
    perturbation (by +-1e3, one pixel at a time) changes the unit in some channel."""
    c, h, w = shape
    base = np.random.default_rng(1).random((1, *shape))
    batch = np.repeat(base, 2 * h * w, axis=0)
    for p in range(h * w):
        batch[2 * p, :, p // w, p % w] += 1e3
        batch[2 * p + 1, :, p // w, p % w] -= 1e3
    out = net.forward(batch, stop=layer)
    ref = net.forward(base, stop=layer)
    changed = (np.abs(out - ref) > 1e-9).any(axis=1).reshape(h * w, 2, *out.shape[2:]).any(axis=1)
    boxes = {}
    for y in range(out.shape[2]):
        for x in range(out.shape[3]):
            ys, xs = np.divmod(np.nonzero(changed[:, y, x])[0], w)
            boxes[y, x] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return boxes


@pytest.mark.parametrize("layer", ["b1.downsample", "b1.add", "b1", "b2.add", "b2"])
def test_receptive_field_through_a_graph_is_the_perturbed_support(layer):
    """The window of every unit (clipped to the image) is the bounding box of the input pixels that
    change it: the union over the block's two paths, not the composition of every listed layer."""
    net = small_resnet()
    shape = (1, 32, 32)
    boxes = perturbed_boxes(net, layer, shape)
    ys, xs = np.meshgrid(*(np.arange(n) for n in net.shapes(shape)[net.index(layer)][1:]), indexing="ij")
    ours = unit_boxes(net, layer, shape, np.stack([ys, xs], axis=-1))
    for (y, x), box in boxes.items():
        x0, y0, x1, y1 = ours[y, x]
        assert (max(x0, 0), max(y0, 0), min(x1, 32), min(y1, 32)) == box, (layer, y, x)
    # the numbers by hand: conv1 3 -> maxpool 3+2=5, jump 2 -> b1.conv1 5+2*2=9, jump 4 -> b1.conv2
    # 9+2*4=17; the shortcut 5 (jump 4) lies inside; b2 adds two 3x3 convs at jump 4: 17+8+8=33
    size = {"b1.downsample": 5, "b1.add": 17, "b1": 17, "b2.add": 33, "b2": 33}[layer]
    assert receptive_field(net, layer)[:2] == ((size, size), (4, 4))


def test_receptive_field_of_inputs_with_different_strides_is_refused():
    from minicnn.tools.topk import union

    with pytest.raises(MinicnnError, match="different strides"):
        union("add", [((3, 3), (2, 2), (0, 0)), ((1, 1), (4, 4), (0, 0))])
