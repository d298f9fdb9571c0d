"""Incremental occlusion through residual networks (Nakandala et al. 2019 on a graph): every branch
carries its own changed region, a sum reads the union of its inputs' regions, and the scores equal
the full recomputation of every occluded image (float64, 1e-12).

References: the occluded images run whole through the network (``score_occluded``, and each node's
output of that full pass), independent of the crops, unions and pastes under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from resnet_torch import random_statistics
from support import assert_close

import minicnn as mc
from minicnn.tools.incremental import incremental_scores
from minicnn.tools.occlusion import grid_positions, score_occluded


def bottleneck_net(seed=0, width=4):
    """A stem (7x7 stride 2, padded max pool) and three bottleneck blocks (1x1 reduce, 3x3, 1x1
    expand by 4, BatchNorm after each conv; torchvision v1.5's stride on the 3x3): a projection
    shortcut at stride 1, one at stride 2, one identity shortcut."""
    nodes = [mc.Conv2D(3, 8, 7, stride=2, padding=3, name="conv1"), mc.BatchNorm2D(8, name="bn1"),
             mc.ReLU(name="relu"), mc.MaxPool2D(3, stride=2, padding=1, name="maxpool")]  # fmt: skip
    entry, cin = "maxpool", 8
    for block, stride in (("layer1.0", 1), ("layer2.0", 2), ("layer2.1", 1)):
        convs = ((cin, width, 1, 1), (width, width, 3, stride), (width, 4 * width, 1, 1))
        for i, (a, b, k, s) in enumerate(convs, start=1):
            conv = mc.Conv2D(a, b, k, stride=s, padding=k // 2, name=f"{block}.conv{i}")
            nodes += [(conv, entry) if i == 1 else conv, mc.BatchNorm2D(b, name=f"{block}.bn{i}")]
            if i < 3:
                nodes.append(mc.ReLU(name=f"{block}.relu{i}"))
        shortcut = entry
        if stride != 1 or cin != 4 * width:
            nodes += [(mc.Conv2D(cin, 4 * width, 1, stride=stride, name=f"{block}.downsample.0"), entry),
                      mc.BatchNorm2D(4 * width, name=f"{block}.downsample.1")]  # fmt: skip
            shortcut = f"{block}.downsample.1"
        nodes += [(mc.Add(name=f"{block}.add"), (f"{block}.bn3", shortcut)), mc.ReLU(name=block)]
        entry, cin = block, 4 * width
    nodes += [mc.GlobalAvgPool2D(name="avgpool"), mc.Dense(cin, 7, name="fc")]
    return random_statistics(mc.Graph(nodes, seed=seed), seed)


def check_regions(net, image, positions, size, fill, regions):
    """Every node's region holds, per occluder, exactly the full pass's output there, and outside
    it the full pass equals the clean pass: the region is where the occluder changed the node.
    Returns how many spatial nodes were recomputed on a crop smaller than their map."""
    batch = np.repeat(image[None], len(positions), axis=0)
    for b, (y, x) in enumerate(positions):
        batch[b, :, y : y + size, x : x + size] = fill[:, None, None]
    full, clean = net.run(batch).outputs, net.run(image[None]).outputs
    cropped = 0
    for name, (patch, r, c) in regions.items():
        scale = float(np.abs(full[name]).max())  # the node's magnitude: a crop may be all zeros
        if r is None:
            assert_close(patch, full[name], 1e-12, f"{name} whole", scale=scale)
            continue
        h, w = patch.shape[2:]
        cropped += h * w < full[name].shape[2] * full[name].shape[3]
        outside = np.repeat(clean[name], len(positions), axis=0)
        for b in range(len(positions)):
            window = (b, slice(None), slice(r[b], r[b] + h), slice(c[b], c[b] + w))
            assert_close(patch[b], full[name][window], 1e-12, f"{name} region, occluder {b}", scale=scale)
            outside[window] = full[name][window]
        # outside the regions the occluded pass is the clean one
        assert_close(outside, full[name], 1e-12, f"{name} outside its region", scale=scale)
    return cropped


@pytest.mark.parametrize("build", ["resnet18", "bottleneck"])
def test_incremental_occlusion_on_a_resnet_equals_the_full_recomputation(build):
    """mc.resnet18 (random BatchNorm statistics, 64x64) and a bottleneck network (48x48): scores of
    occluders over the whole grid, border squares included, equal the full passes (float64, 1e-12);
    every node's region is exactly where the occluded pass differs, and most nodes before the
    global pooling ran on crops smaller than their map (the point of it)."""
    if build == "resnet18":
        net = random_statistics(mc.resnet18(seed=1, num_classes=7, input_size=64))
        side, size, stride = 64, 12, 13
    else:
        net, (side, size, stride) = bottleneck_net(), (48, 9, 13)
    image = np.random.default_rng(2).standard_normal((3, side, side))
    grid = grid_positions(side, size, stride)
    positions = [(int(y), int(x)) for y in grid for x in grid]
    fill = np.array([0.3, -0.5, 1.0])
    regions = {}
    ours = incremental_scores(net, image, positions, size, fill, keep=regions)
    full = score_occluded(net, image, positions, size, fill)
    clean = net.forward(image[None])
    assert np.abs(full - clean).max() > 1e-3 * np.abs(clean).max()  # the occluders change the scores
    assert_close(ours, full, 1e-12, f"{build} incremental scores")
    cropped = check_regions(net, image, positions, size, fill, regions)
    assert cropped >= (12 if build == "resnet18" else 8), cropped


def test_a_sum_reads_the_union_of_regions_that_differ():
    """Two branches whose regions differ in size and place (a 5x5 conv and a 1x1 conv of the same
    input): the sum's region is their union, moved inward at the border, and the scores equal the
    full pass (float64, 1e-12)."""
    net = mc.Graph(
        [
            mc.Conv2D(2, 3, 5, padding=2, name="wide"),
            (mc.Conv2D(2, 3, 1, name="narrow"), "input"),
            (mc.Conv2D(2, 3, 3, stride=1, padding=1, name="mid"), "input"),
            (mc.Add(name="add"), ("narrow", "mid", "wide")),  # the widest last
            mc.ReLU(name="relu"),
            mc.Flatten(name="flat"),
            mc.Dense(3 * 16 * 16, 4, name="fc"),
        ],
        seed=3,
        dtype=np.float64,
    )
    image = np.random.default_rng(4).standard_normal((2, 16, 16))
    positions = [(0, 0), (5, 9), (13, 14), (15, 2)]
    fill = np.zeros(2)
    regions = {}
    ours = incremental_scores(net, image, positions, 3, fill, full_above=1.0, keep=regions)
    assert_close(ours, score_occluded(net, image, positions, 3, fill), 1e-12, "three-way sum")
    patch, r, c = regions["add"]
    assert patch.shape[2:] == (7, 7)  # the 5x5 conv's region: 3 + 4 rows, holding the others
    assert list(r) == [0, 3, 9, 9] and list(c) == [0, 7, 9, 0]  # (moved inward at the borders)
    check_regions(net, image, positions, 3, fill, regions)
