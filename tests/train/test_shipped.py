"""The shipped digit models: they load, carry full metadata, and reach the accuracy they claim."""

from __future__ import annotations

import numpy as np
import pytest
from support import assert_close

import minicnn as mc
from minicnn.paths import DEFAULT_MODEL, GAP_MODEL
from minicnn.train import data
from minicnn.train.samples import CLUTTER_FILE, PHOTOS, PHOTOS_DIR

MODELS = {"mnist-vgg": DEFAULT_MODEL, "mnist-gap": GAP_MODEL}


@pytest.fixture(scope="module")
def heldout():
    images, labels = data.load_heldout()
    return data.to_input(images), labels


@pytest.mark.parametrize("name", list(MODELS))
def test_shipped_model_reaches_its_claimed_accuracy(name, heldout):
    path = MODELS[name]
    assert path.stat().st_size <= 5 * 2**20, f"{path} is over 5 MB"
    net = mc.load(path)
    meta = net.meta
    assert meta["architecture"] == name
    assert meta["input_shape"] == [1, 28, 28] and meta["preprocess"] == "unit"
    assert meta["class_names"] == [str(d) for d in range(10)]
    prov = meta["provenance"]
    for key in ("data", "split", "seed", "epochs", "accuracy", "command"):
        assert key in prov, key
    x, labels = heldout
    scores = np.concatenate([net.forward(x[i : i + 100]) for i in range(0, 500, 100)])
    correct = int((scores.argmax(axis=1) == labels).sum())  # an exact recount
    assert correct / 500 == pytest.approx(prov["accuracy"], abs=1e-12)
    assert correct >= 485, f"{name}: {correct} / 500"  # at least 97%


def test_vgg_uses_keras_layer_names():
    names = mc.load(DEFAULT_MODEL).names
    for name in ("block1_conv1", "block1_conv1_relu", "block1_pool", "block2_conv2", "flatten",
                 "fc1", "fc1_relu", "fc1_dropout", "predictions"):  # fmt: skip
        assert name in names


def test_gap_model_classifies_digits_in_clutter():
    net = mc.load(GAP_MODEL)
    assert [la.kind for la in net.layers][-2:] == ["GlobalAvgPool2D", "Dense"]
    with np.load(CLUTTER_FILE) as f:
        x, labels = data.to_input(f["images"]), f["labels"]
    assert x.shape == (200, 1, 84, 84)
    scores = np.concatenate([net.forward(x[i : i + 50]) for i in range(0, 200, 50)])
    assert scores.shape == (200, 10)
    # 0.855 (171 / 200) measured for the shipped model; chance is 0.1
    assert (scores.argmax(axis=1) == labels).mean() >= 0.8


def test_photos_are_shipped_with_licences():
    from PIL import Image

    licences = (PHOTOS_DIR / "LICENSES.md").read_text()
    for fn, (name, *_rest, licence) in PHOTOS.items():
        with Image.open(PHOTOS_DIR / name) as im:
            assert im.size == (224, 224) and im.mode == "RGB"
        assert name in licences and f"skimage.data.{fn}()" in licences
        assert licence in ("CC0", "public domain")


def test_gap_model_is_bias_free_so_a_larger_canvas_only_rescales_the_scores(heldout):
    """Bias-free, black background gives zero features; so a digit framed by enough black (more than
    the receptive field's reach), moved by multiples of 4 (the two pools' stride), has the same
    feature maps up to translation, and the global average only rescales with the map area
    (Zhou et al. 2016, sec. 2: score = w . mean of the last maps): 15x15 maps on 60x60, 21x21 on 84."""
    net = mc.load(GAP_MODEL)
    assert all(not np.any(layer.bias) for layer in net.layers if layer.has_params)
    x, _ = heldout
    x = x[::25]  # 20 digits
    framed = np.zeros((20, 1, 60, 60), np.float32)
    framed[:, :, 16:44, 16:44] = x
    canvas = np.zeros((20, 1, 84, 84), np.float32)
    canvas[:10, :, 16:44, 40:68] = x[:10]
    canvas[10:, :, 40:68, 20:48] = x[10:]
    scores = net.forward(canvas)
    assert_close(scores * (21 * 21), net.forward(framed) * (15 * 15), rtol=1e-4)
    # and on a plain 28x28 digit the argmax mostly agrees (the frame only removes edge effects)
    assert (scores.argmax(axis=1) == net.forward(x).argmax(axis=1)).mean() >= 0.9
