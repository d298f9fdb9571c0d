"""Incremental occlusion (Nakandala et al. 2019) equals the full recomputation of the occluded images."""

import numpy as np
import pytest
from support import assert_close

import minicnn as mc
from minicnn.tools.incremental import incremental_scores
from minicnn.tools.occlusion import grid_positions, score_occluded


def mixed_net():
    """Odd kernels, stride 2 convolution, overlapping pooling, padding 0/1/2: every border case."""
    return mc.Sequential(
        [
            mc.Conv2D(3, 8, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2),
            mc.Conv2D(8, 8, 5, stride=2, padding=2), mc.ReLU(), mc.MaxPool2D(3, stride=2),
            mc.Conv2D(8, 6, 3), mc.ReLU(), mc.Flatten(), mc.Dense(6 * 5 * 5, 5),
        ],
        seed=0,
    )  # fmt: skip


@pytest.mark.parametrize("size,stride", [(8, 4), (5, 3), (16, 8), (3, 7), (64, 1)])
def test_equals_full_recomputation(size, stride):
    rng = np.random.default_rng(size)
    net = mixed_net()
    image = rng.standard_normal((3, 64, 64)).astype(np.float32)
    grid = grid_positions(64, size, stride)
    positions = [(int(y), int(x)) for y in grid for x in grid]
    fill = np.array([0.5, -1.0, 2.0], np.float32)
    incremental = incremental_scores(net, image, positions, size, fill)
    full = score_occluded(net, image, positions, size, fill)
    clean = net.forward(image[None])
    assert np.abs(full - clean).max() > 1e-3 * np.abs(clean).max()  # occluders do change the scores
    assert_close(incremental, full, what=f"size {size} stride {stride}")


def test_gap_network_and_early_fallback():
    """A network ending in global average pooling, and full_above=0 (fall back at once)."""
    rng = np.random.default_rng(1)
    net = mc.Sequential(
        [mc.Conv2D(1, 4, 3), mc.ReLU(), mc.MaxPool2D(2), mc.Conv2D(4, 4, 3, padding=1), mc.ReLU(),
         mc.GlobalAvgPool2D(), mc.Dense(4, 3)],
        seed=2,
    )  # fmt: skip
    image = rng.standard_normal((1, 30, 30)).astype(np.float32)
    positions = [(0, 0), (5, 22), (26, 26), (12, 3)]
    fill = np.zeros(1, np.float32)
    full = score_occluded(net, image, positions, 6, fill)
    for frac in (0.0, 0.6, 1.0):
        assert_close(incremental_scores(net, image, positions, 6, fill, full_above=frac), full)


def test_vgg16_positions_across_the_image():
    net = mc.vgg16(seed=0)
    image = (np.random.default_rng(3).standard_normal((3, 224, 224)) * 50).astype(np.float32)
    positions = [(0, 0), (104, 104), (208, 16), (56, 200)]
    fill = np.zeros(3, np.float32)
    assert_close(
        incremental_scores(net, image, positions, 16, fill), score_occluded(net, image, positions, 16, fill)
    )


def test_occlusion_tool_incremental_equals_full():
    """mc.occlusion uses the incremental path by default; the full recomputation gives the same maps."""
    rng = np.random.default_rng(4)
    net = mixed_net()
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    fast = mc.occlusion(net, x, [1, 3], size=12, stride=6, fill="mean", batch_size=16, progress=False)
    slow = mc.occlusion(
        net, x, [1, 3], size=12, stride=6, fill="mean", batch_size=16, progress=False, incremental=False
    )
    for field in ("score", "prob", "top_prob", "attribution"):
        assert_close(getattr(fast, field), getattr(slow, field), what=field)
    np.testing.assert_array_equal(fast.top_class, slow.top_class)
