"""Preprocessing conventions against Keras's own implementations, and their inverses."""

from __future__ import annotations

import numpy as np
import pytest
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError


@pytest.fixture(scope="module")
def imagenet_utils():
    oracle("keras")
    from keras.applications import imagenet_utils

    return imagenet_utils


def images(shape=(2, 7, 5, 3), seed=0, dtype=np.uint8):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(dtype)


@pytest.mark.parametrize("mode", ["caffe", "torch"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_matches_keras_preprocess_input(imagenet_utils, mode, dtype):
    """Keras's ``preprocess_input(mode=...)`` is the reference (vgg16.preprocess_input is caffe)."""
    img = images(dtype=dtype)
    expected = imagenet_utils.preprocess_input(img.astype(np.float32), mode=mode)  # NHWC
    x = mc.preprocess(img, mode)
    assert x.dtype == np.float32 and x.shape == (2, 3, 7, 5) and x.flags.c_contiguous
    assert_close(x, np.asarray(expected).transpose(0, 3, 1, 2), rtol=1e-6, what=mode)


def test_caffe_numbers_by_hand():
    """One pixel worked out: RGB (10, 20, 30) -> BGR (30, 20, 10) minus (103.939, 116.779, 123.68)."""
    x = mc.preprocess(np.array([[[10, 20, 30]]], np.uint8), "caffe")
    assert_close(x[0, :, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], 1e-6, "caffe", elementwise=True)
    x = mc.preprocess(np.array([[[0, 255, 51]]], np.uint8), "torch")
    expected = [-0.485 / 0.229, (1 - 0.456) / 0.224, (0.2 - 0.406) / 0.225]
    assert_close(x[0, :, 0, 0], expected, 1e-6, "torch", elementwise=True)


@pytest.mark.parametrize("mode", ["caffe", "torch", "unit", "none"])
def test_round_trip(mode):
    img = images(seed=1)
    x = mc.preprocess(img, mode)
    back = mc.deprocess(x, mode)
    assert back.shape == img.shape and back.dtype == np.float32
    assert_close(back, img, 1e-7, mode, atol=1e-3, elementwise=True)
    single = mc.deprocess(x[0], mode)  # (C, H, W) -> (H, W, C)
    np.testing.assert_array_equal(single, back[0])


@pytest.mark.parametrize("mode", ["unit", "none"])
def test_grayscale(mode):
    img = images((6, 4, 1), seed=2)
    x = mc.preprocess(img, mode)
    assert x.shape == (1, 1, 6, 4)
    assert_close(x[0, 0], img[..., 0] / (255.0 if mode == "unit" else 1.0), 1e-6, mode, elementwise=True)
    np.testing.assert_array_equal(mc.preprocess(img[..., 0], mode), x)  # (H, W) works too
    assert_close(mc.deprocess(x, mode)[0], img, 1e-7, mode, atol=1e-4, elementwise=True)


def test_deprocess_clips_for_display():
    x = np.full((1, 3, 2, 2), 500.0, np.float32)
    assert mc.deprocess(x, "none").max() == 255.0
    assert mc.deprocess(x, "none", clip=False).max() == 500.0


@pytest.mark.parametrize(
    "args, expected",
    [
        ((images(), "bgr"), "unknown preprocessing 'bgr'"),
        ((images((4, 4, 1)), "caffe"), "expects 3 channels"),
        ((images((4, 4, 4)), "none"), "1 .grayscale. or 3 .RGB. channels"),
        ((images((1, 2, 4, 4, 3)), "none"), r"expected images \(N, H, W, C\)"),
        ((np.full((4, 4, 3), 300.0), "unit"), "0..255"),
        ((np.full((4, 4, 3), np.nan), "none"), "NaN"),
        ((np.array([["a"]]), "none"), "numeric"),
    ],
)
def test_bad_input(args, expected):
    with pytest.raises(MinicnnError, match=expected):
        mc.preprocess(*args)


def test_deprocess_bad_input():
    with pytest.raises(MinicnnError, match=r"\(N, C, H, W\)"):
        mc.deprocess(np.zeros((3, 3)), "none")
    with pytest.raises(MinicnnError, match="3 channels"):
        mc.deprocess(np.zeros((1, 1, 3, 3)), "caffe")


# -- --preprocess at the command line, on a Keras model file that names no convention ---------------
@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """(keras model, its model.save("x.h5") file, which names no preprocessing, a 16 x 16 RGB photo
    file, the photo's pixels (16, 16, 3) uint8)."""
    from io_helpers import seed_weights
    from PIL import Image

    keras = oracle("keras")
    L = keras.layers
    model = keras.Sequential(
        [keras.Input((16, 16, 3)), L.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
         L.MaxPooling2D(2, name="pool"), L.Flatten(name="flatten"), L.Dense(3, name="scores")],
        name="plain",
    )  # fmt: skip
    seed_weights(model, 11)
    folder = tmp_path_factory.mktemp("keras_plain")
    model.save(folder / "plain.h5")
    pixels = images((16, 16, 3), seed=4)
    Image.fromarray(pixels).save(folder / "photo.png")
    return model, folder / "plain.h5", folder / "photo.png", pixels


def keras_saliency(model, x_nhwc: np.ndarray, target: int) -> np.ndarray:
    """max over channels of |d score_target / d input| by Keras's own model and torch autograd."""
    import torch

    x = torch.tensor(np.ascontiguousarray(x_nhwc), dtype=torch.float32, requires_grad=True)
    model(x)[0, target].backward()
    return np.abs(x.grad.numpy()[0]).max(axis=-1)


def run_saliency(capsys, tmp_path, path, photo, *extra) -> tuple[dict, np.ndarray, str]:
    """minicnn saliency --json on the file: (summary, saved map (16, 16), what it printed)."""
    import json

    from minicnn.cli.main import main

    out = tmp_path / "-".join(["out", *extra])
    argv = ["saliency", "--weights", path, "--image", photo, "--target", "1", "--out", out, "--json"]
    assert main([*map(str, argv), "--save-arrays", "--no-progress", *extra]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    (npz,) = [f for f in summary["files"] if f.endswith(".npz")]
    return summary, np.load(npz)["saliency"], captured.err


@pytest.mark.parametrize("convention", [None, "caffe", "torch"])
def test_preprocess_option_on_a_keras_file_without_metadata(capsys, tmp_path, keras_file, convention):
    """The file names no convention: without --preprocess the run says it uses raw pixels ("none");
    with it, the images are preprocessed that way. Either way the choice is printed and in --json,
    and the map equals Keras's own gradient on the image preprocessed by Keras's preprocess_input."""
    from keras.applications import imagenet_utils

    model, path, photo, pixels = keras_file
    assert mc.load(path).meta.get("preprocess") is None  # the case: nothing in the file
    extra = () if convention is None else ("--preprocess", convention)
    summary, saliency, printed = run_saliency(capsys, tmp_path, path, photo, *extra)
    used = convention or "none"
    assert summary["settings"]["preprocess"] == used
    if convention is None:
        assert "preprocessing: none (the model file names none, so raw 0..255 pixels" in printed
        x = pixels[None].astype(np.float32)
    else:
        assert f"preprocessing: {convention} (--preprocess)" in printed
        x = np.asarray(imagenet_utils.preprocess_input(pixels[None].astype(np.float32), mode=convention))
    expected = keras_saliency(model, x, target=1)
    assert_close(saliency, expected, 1e-4, f"saliency with {used}")


def test_preprocess_option_changes_the_map_and_is_checked_first(capsys, tmp_path, keras_file):
    _, path, photo, _ = keras_file
    _, raw, _ = run_saliency(capsys, tmp_path, path, photo)
    _, caffe, _ = run_saliency(capsys, tmp_path, path, photo, "--preprocess", "caffe")
    assert np.abs(raw - caffe).max() > 0.1 * np.abs(raw).max()  # the option really reaches the input
    import subprocess
    import sys

    argv = ["saliency", "--weights", tmp_path / "missing.h5", "--preprocess", "bgr"]
    bad = subprocess.run([sys.executable, "-m", "minicnn", *argv], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1
    assert "--preprocess: invalid choice: 'bgr'" in bad.stderr and "missing" not in bad.stderr
