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


def test_stride_larger_than_kernel_before_a_convolution():
    """Issue 13's reproducer: a pool whose stride exceeds its kernel skips input rows; an occluder
    there changes no output (it used to crash with a zero-length patch)."""
    net = mc.Sequential(
        [mc.MaxPool2D(2, stride=3), mc.Conv2D(1, 1, 1), mc.GlobalAvgPool2D(), mc.Dense(1, 2)],
        seed=0,
        dtype=np.float64,
    )
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8))
    kwargs = dict(size=1, stride=1, fill=0.0, progress=False, batch_size=1)
    fast = mc.occlusion(net, x, 0, **kwargs)
    slow = mc.occlusion(net, x, 0, incremental=False, **kwargs)
    assert_close(fast.score, slow.score, 1e-12)
    assert np.abs(slow.score - slow.base_score[:, None, None]).max() > 0  # some occluders matter
    assert (slow.score[0, 2] == slow.base_score[0]).all()  # row 2 is read by no pooling window


@pytest.mark.parametrize("seed", range(6))
def test_random_architectures_with_gaps_and_overlaps(seed):
    """Random stacks of convolutions and pools (stride below, equal to and above the kernel,
    paddings 0-2), every occluder position and batch size 1 or 3: incremental equals full."""
    rng = np.random.default_rng(100 + seed)
    layers, c, size = [], 2, 23
    for _ in range(int(rng.integers(2, 4))):
        if rng.random() < 0.5:
            k, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            layers.append(mc.MaxPool2D(k, stride=s))
            size = (size - k) // s + 1
        else:
            k, s, p = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 3))
            p = min(p, k - 1)
            o = int(rng.integers(1, 4))
            layers += [mc.Conv2D(c, o, k, stride=s, padding=p), mc.ReLU()]
            c, size = o, (size + 2 * p - k) // s + 1
        if size < 3:
            break
    layers += [mc.Conv2D(c, 2, 1), mc.GlobalAvgPool2D(), mc.Dense(2, 3)]
    net = mc.Sequential(layers, seed=seed, dtype=np.float64)
    image = rng.standard_normal((2, 23, 23))
    occ = int(rng.integers(1, 5))
    grid = grid_positions(23, occ, 1)
    positions = [(int(y), int(x)) for y in grid for x in grid]
    fill = np.array([0.0, 1.5])
    full = score_occluded(net, image, positions, occ, fill)
    for batch in (1, 3):
        parts = [
            incremental_scores(net, image, positions[i : i + batch], occ, fill, full_above=1.0)
            for i in range(0, len(positions), batch)
        ]
        assert_close(np.concatenate(parts), full, 1e-12, f"{net.names} batch {batch}")


def test_incremental_uses_the_layers_own_lowering(monkeypatch):
    """A layer built with algorithm="im2col" is never convolved with Winograd on the crops."""
    from minicnn.kernels import conv as conv_kernels
    from minicnn.kernels import winograd

    net = mc.Sequential(
        [
            mc.Conv2D(16, 16, 3, padding=1, algorithm="im2col"),
            mc.ReLU(),
            mc.GlobalAvgPool2D(),
            mc.Dense(16, 2),
        ],
        seed=0,
    )
    image = np.random.default_rng(0).standard_normal((16, 12, 12)).astype(np.float32)

    def refuse(*args, **kwargs):
        raise AssertionError("Winograd ran on a layer built with algorithm='im2col'")

    monkeypatch.setattr(winograd, "winograd_conv", refuse)
    positions = [(0, 0), (4, 6)]
    scores = incremental_scores(net, image, positions, 3, np.zeros(16, np.float32), full_above=1.0)
    assert_close(scores, score_occluded(net, image, positions, 3, np.zeros(16, np.float32)))
    net["conv2d_0"].algorithm = "auto"  # 16 channels each side: auto takes Winograd, which now raises
    monkeypatch.setattr(conv_kernels, "WINOGRAD_MIN_WORK", 0)  # (small crops: else im2col by work)
    with pytest.raises(AssertionError, match="Winograd ran"):
        incremental_scores(net, image, positions, 3, np.zeros(16, np.float32), full_above=1.0)
