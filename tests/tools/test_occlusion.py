"""Occlusion sensitivity (Zeiler & Fergus 2013, sec. 4.2) against Captum's Occlusion and brute force."""

import numpy as np
import pytest
from support import assert_close, oracle
from torch_mirror import to_torch

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.tools.occlusion import fill_values


def captum_occlusion(net, x, targets, size, stride, fill, dtype="float64"):
    """Captum's Occlusion attribution with a window over all channels; fill (N, C) baselines."""
    torch = oracle("torch")
    dtype = getattr(torch, dtype)
    attr = oracle("captum.attr")
    c = x.shape[1]
    baselines = torch.tensor(np.broadcast_to(fill[:, :, None, None], x.shape).copy(), dtype=dtype)
    out = attr.Occlusion(to_torch(net, dtype)).attribute(
        torch.tensor(x, dtype=dtype),
        sliding_window_shapes=(c, size, size),
        strides=(c, stride, stride),
        baselines=baselines,
        target=torch.as_tensor(np.asarray(targets)),
        perturbations_per_eval=64,
    )
    return out.numpy()


def brute_force(net, x, target, y0, x0, size, fill):
    """Torch scores of one image with the square at (y0, x0) filled: (K,) and softmax (K,)."""
    torch = oracle("torch")
    img = torch.tensor(x[None], dtype=torch.float64)
    img[:, :, y0 : y0 + size, x0 : x0 + size] = torch.tensor(fill, dtype=torch.float64)[:, None, None]
    s = to_torch(net, torch.float64)(img)[0]
    return s.numpy(), torch.softmax(s, 0).numpy()


@pytest.mark.parametrize(
    ("size", "stride", "fill"),
    [(4, 2, "zero"), (5, 3, "mean"), (6, 4, 0.7), (3, 3, "grey")],
)
def test_against_captum(small_net, small_images, size, stride, fill):
    targets = [1, 0, 4]
    res = mc.occlusion(
        small_net, small_images, targets, size, stride, fill=fill, batch_size=7, progress=False
    )
    expected = captum_occlusion(small_net, small_images, targets, size, stride, res.fill)
    for ch in range(3):  # the window spans every channel, so Captum's map is the same in each
        assert_close(res.attribution, expected[:, ch], what=f"attribution {size}/{stride}/{fill}")


def test_positions_brute_force(small_net, small_images):
    """Per-position score, probability and top class against torch scores of hand-occluded images."""
    size, stride = 5, 4
    res = mc.occlusion(small_net, small_images, "predicted", size, stride, fill="zero", progress=False)
    torch = oracle("torch")
    base = to_torch(small_net, torch.float64)(torch.tensor(small_images, dtype=torch.float64)).numpy()
    assert np.array_equal(res.targets, base.argmax(1))
    assert_close(res.base_score, base[np.arange(3), res.targets], what="base score")
    assert list(res.ys) == [0, 4, 8, 12] and list(res.xs) == [0, 4, 8, 12]  # ceil((16-5)/4)+1 = 4
    for n in range(3):
        for i, y0 in enumerate(res.ys):
            for j, x0 in enumerate(res.xs):
                s, p = brute_force(small_net, small_images[n], res.targets[n], y0, x0, size, res.fill[n])
                t = res.targets[n]
                assert abs(res.score[n, i, j] - s[t]) <= 1e-4 * np.abs(s).max()
                assert abs(res.prob[n, i, j] - p[t]) <= 1e-5
                assert abs(res.top_prob[n, i, j] - p.max()) <= 1e-5
                assert p[res.top_class[n, i, j]] >= p.max() - 1e-6


def test_fill_values(small_net, small_images):
    x = small_images
    assert_close(fill_values(small_net, x, "mean"), x.mean(axis=(2, 3)), what="mean")
    assert np.all(fill_values(small_net, x, "zero") == 0)
    assert np.all(fill_values(small_net, x, 2.5) == 2.5)
    assert_close(fill_values(small_net, x, "grey"), np.full((3, 3), (x.min() + x.max()) / 2), what="grey")
    # VGG16 uses Caffe preprocessing: mid-grey 127.5 minus the ImageNet BGR means
    caffe = mc.Sequential([mc.Flatten()], meta={"preprocess": "caffe"})
    grey = fill_values(caffe, np.zeros((1, 3, 4, 4), np.float32), "grey")
    assert_close(grey[0], 127.5 - np.array([103.939, 116.779, 123.68]), what="caffe grey")


def test_vgg16(vgg16, vgg_image):
    """A big occluder and stride keep this to 5 VGG16 passes per framework (the last squares are cut
    by the border: positions 0 and 100 of a 124-pixel square)."""
    x = vgg_image[:1]
    res = mc.occlusion(vgg16, x, [7], size=124, stride=100, fill="grey", batch_size=4, progress=False)
    assert res.score.shape == (1, 2, 2) and res.attribution.shape == (1, 224, 224)
    # float32 here: forward passes only (no ReLU masks to flip), and float64 VGG16 is slow on 2 cores
    expected = captum_occlusion(vgg16, x, [7], 124, 100, res.fill, dtype="float32")
    assert_close(res.attribution, expected[:, 0], what="vgg16 occlusion")


def test_shipped_digit_model(digit_net, make_digit_images):
    x = make_digit_images(digit_net, n=2)
    res = mc.occlusion(digit_net, x, [3, 8], size=8, stride=4, fill=0.0, progress=False)
    expected = captum_occlusion(digit_net, x, [3, 8], 8, 4, res.fill)
    assert_close(res.attribution, expected[:, 0], what="digits occlusion")


def test_bad_input(small_net, small_images):
    with pytest.raises(MinicnnError, match="larger than the 16x16 image"):
        mc.occlusion(small_net, small_images, 0, size=17, progress=False)
    with pytest.raises(MinicnnError, match="fill must be one of"):
        mc.occlusion(small_net, small_images, 0, fill="blue", progress=False)
    with pytest.raises(MinicnnError, match="positive"):
        mc.occlusion(small_net, small_images, 0, size=4, stride=0, progress=False)
    with pytest.raises(MinicnnError, match="out of range"):
        mc.occlusion(small_net, small_images, 9, progress=False)
    with pytest.raises(MinicnnError, match="same"):
        mc.occlusion(small_net, [small_images[0], small_images[0, :, 1:]], 0, progress=False)
