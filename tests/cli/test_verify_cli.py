"""``minicnn verify`` end to end: a torch-written VGG file and maps made by Captum on the torch model
itself for a preprocessed input; exit 0 when they agree, 1 on a map with one changed region, 2 on
bad input; ``--against captum`` on the Captum Deconvolution finding; and the ImageNet path (image
file, torch preprocessing, class names) of a torchvision-layout file through ``minicnn saliency``."""

from __future__ import annotations

import numpy as np
import pytest
import torch_models as tm
from cli_helpers import minicnn, ok
from PIL import Image
from support import oracle

import minicnn as mc

SIZE = 48


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The model file, an input .npy, and Captum's guided-backprop map of the torch model (NHWC .npz)."""
    torch = oracle("torch")
    attr = oracle("captum.attr")
    folder = tmp_path_factory.mktemp("verify")
    model = tm.torchvision_vgg(bn=True)
    weights = tm.save(model, folder / "small.pth", "legacy")
    x = mc.preprocess(tm.images(1, SIZE, seed=5), "torch")
    np.save(folder / "x.npy", x)
    guided = attr.GuidedBackprop(model).attribute(torch.from_numpy(x), target=2).detach().numpy()
    np.savez(folder / "guided.npz", attributions=guided.transpose(0, 2, 3, 1))  # as a Keras user would
    changed = guided.copy()
    changed[0, :, 10:18, 20:28] *= 1.2
    np.save(folder / "changed.npy", changed)
    return folder, weights


def test_agrees_with_captum_map(files):
    folder, weights = files
    r = ok("verify", "--weights", weights, "--input", folder / "x.npy", "--method", "guided", "--target", "2",
           "--map", folder / "guided.npz", "--out", folder / "ok")  # fmt: skip
    assert "AGREE" in r.stdout and "NHWC" in r.stdout
    assert list((folder / "ok").glob("*_guided_difference.png"))


def test_one_changed_region_exits_1(files):
    folder, weights = files
    r = minicnn("verify", "--weights", weights, "--input", folder / "x.npy", "--method", "guided",
                "--target", "2", "--map", folder / "changed.npy", "--out", folder / "bad")  # fmt: skip
    assert r.code == 1, r.stderr
    assert "DISAGREE" in r.stdout
    line = next(t for t in r.stdout.splitlines() if "largest difference" in t)
    row, col = int(line.split("row ")[1].split(",")[0]), int(line.split("column ")[1].split()[0])
    assert 10 <= row < 18 and 20 <= col < 28


def test_captum_finding_through_the_cli(tmp_path):
    """The issue's reproducer as a minicnn file: --against captum disagrees on DeconvNet (exit 1).
    minicnn's relu(relu(dy)) = [1, 1, 2, 0], Captum's [0, 1, 0, 0]: max |difference| 2, scale 1."""
    oracle("captum")
    net = mc.Sequential(
        [mc.ReLU(), mc.ReLU(), mc.Flatten(), mc.Dense(4, 1)],
        meta={"preprocess": "none", "input_shape": [4, 1, 1]},
    )
    net.layers[-1].weight = np.array([[1.0, 1.0, 2.0, -2.0]], np.float32)
    net.layers[-1].bias = np.zeros(1, np.float32)
    mc.save(net, tmp_path / "relu_relu.h5")
    np.save(tmp_path / "x.npy", np.array([-1.0, 2.0, -3.0, 4.0], np.float32).reshape(4, 1, 1))
    args = ("verify", "--weights", tmp_path / "relu_relu.h5", "--input", tmp_path / "x.npy", "--target", "0",
            "--against", "captum", "--out", tmp_path / "o")  # fmt: skip
    r = minicnn(*args, "--method", "deconvnet")  # a fresh process: Captum's first call, as in README
    assert r.code == 1 and "max relative difference 2 " in r.stdout, r.stdout + r.stderr


def test_bad_map_is_one_line_exit_2(files):
    folder, weights = files
    np.save(folder / "wrong.npy", np.zeros((1, 3, 5, 5)))
    r = minicnn("verify", "--weights", weights, "--input", folder / "x.npy", "--map", folder / "wrong.npy",
                "--method", "gradient", "--out", folder / "w")  # fmt: skip
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1 and "fits none of the layouts" in r.stderr
    r = minicnn("verify", "--weights", weights, "--input", folder / "x.npy", "--out", folder / "w")
    assert r.code == 2 and "--map FILE" in r.stderr


def test_imagenet_path_with_a_torch_file(tmp_path):
    """A torchvision-layout file (VGG16-BN's structure, 1000 classes) through ``minicnn saliency``:
    torch preprocessing, ImageNet names in the top-5, --target by name; the top-1 the CLI prints is
    torch's own on the same resized image preprocessed here (RGB, /255, mean/std written out)."""
    model = tm.torchvision_vgg(tm.VGG16_NARROW, bn=True, hidden=64, classes=1000, side=7)
    weights = tm.save(model, tmp_path / "vgg16_bn.pth", "zip")
    photo = Image.fromarray(tm.images(1, 224, seed=8)[0].astype(np.uint8))
    photo.save(tmp_path / "photo.png")
    rgb = np.asarray(photo, dtype=np.float64) / 255.0
    x = ((rgb - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)[None].astype(np.float32)
    top1 = mc.load(weights).meta["class_names"][int(tm.scores(model, x).argmax())]
    r = ok("saliency", "--weights", weights, "--image", tmp_path / "photo.png", "--target", "tench",
           "--out", tmp_path / "o")  # fmt: skip
    assert f"top-5 {top1} " in r.stdout and "class 0 (tench)" in r.stdout, r.stdout
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(weights.read_bytes()[:100_000])
    bad = minicnn(
        "saliency", "--weights", truncated, "--image", tmp_path / "photo.png", "--out", tmp_path / "b"
    )
    assert bad.code == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
