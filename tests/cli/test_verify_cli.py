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


# -- what verify says: the diagnosis, --json, the layer and occluder it used, layouts, float64 ------
def test_json_is_complete_and_carries_the_diagnosis(files):
    """A guided map with its sign flipped (a minimised loss): exit 1, one "explained: sign" line,
    and --json with model, inputs, targets, methods, settings and the diagnosis."""
    import json

    folder, weights = files
    flipped = -np.load(folder / "guided.npz")["attributions"]
    np.save(folder / "flipped.npy", flipped)
    given = ("--weights", weights, "--input", folder / "x.npy", "--method", "guided", "--target", "2")
    r = minicnn("verify", *given, "--map", folder / "flipped.npy", "--out", folder / "j", "--json")
    assert r.code == 1, r.stderr
    summary = json.loads(r.stdout[r.stdout.index("{") :])
    assert summary["model"] == str(weights) and summary["inputs"] == ["x"]
    assert summary["targets"][0]["index"] == 2 and summary["methods"]
    assert summary["settings"]["method"] == "guided" and summary["settings"]["layout"] == "NHWC"
    first = summary["diagnosis"][0]
    assert first["cause"] == "sign" and first["residual"] < 1e-6, summary["diagnosis"]
    assert "explained: sign:" in r.stderr  # with --json the lines go to stderr
    r = ok("verify", *given, "--map", folder / "guided.npz", "--out", folder / "j2", "--json")
    assert json.loads(r.stdout[r.stdout.index("{") :])["diagnosis"] == []  # a correct map: none


def test_grad_cam_layer_switch_is_said(files):
    """--layer names a conv: Grad-CAM uses the ReLU that reads it, and says so."""
    folder, weights = files
    net = mc.load(weights)
    conv = [layer.name for layer in net.layers if layer.is_convolution][-1]
    relu = net.names[net.names.index(conv) + 1]
    given = ("--weights", weights, "--input", folder / "x.npy", "--method", "grad_cam", "--target", "2")
    r = ok("verify", *given, "--layer", conv, "--against", "captum", "--out", folder / "g")
    assert f"Grad-CAM at {relu}, the ReLU that reads {conv}" in r.stdout, r.stdout


def test_occluder_defaults_are_occlusions(files):
    """Without --size/--stride verify slides minicnn occlusion's occluder (scaled to the image)."""
    from minicnn.tools.occlusion import default_occluder

    folder, weights = files
    size, stride = default_occluder(SIZE)
    given = ("--weights", weights, "--input", folder / "x.npy", "--method", "occlusion", "--target", "2")
    r = ok("verify", *given, "--against", "captum", "--out", folder / "o")
    assert f"occluder {size}x{size}, stride {stride}, fill grey (as minicnn occlusion" in r.stdout, r.stdout
    assert "AGREE" in r.stdout and "forward + backward passes" in r.stdout


def test_float64_against_keras_is_refused_for_the_measured_reason(files):
    """Keras 3.15's torch backend computes keras.ops.matmul of two float64 tensors in float32 (its
    result_type reads a pair of torch.float64 as float32), so a Keras reference cannot be float64:
    --float64 --against keras is one line, exit 2. If this Keras fact changes, allow --float64."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = oracle("keras")
    torch = oracle("torch")
    rng = np.random.default_rng(0)
    a, b = rng.random((4, 64)), rng.random((64, 3))
    product = keras.ops.matmul(torch.from_numpy(a), torch.from_numpy(b)).detach().numpy()
    assert np.abs(product - a @ b).max() > 1e-9  # float32 rounding, not float64's ~1e-15
    folder, weights = files
    r = minicnn("verify", "--weights", weights, "--input", folder / "x.npy", "--method", "gradient",
                "--against", "keras", "--float64", "--out", folder / "k")  # fmt: skip
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1 and "keras.ops.matmul" in r.stderr


def test_input_in_nhwc(files):
    folder, weights = files
    np.save(folder / "x_nhwc.npy", np.load(folder / "x.npy").transpose(0, 2, 3, 1))
    for layout in ("auto", "NHWC"):
        r = ok("verify", "--weights", weights, "--input", folder / "x_nhwc.npy", "--input-layout", layout,
               "--method", "guided", "--target", "2", "--map", folder / "guided.npz",
               "--out", folder / "n")  # fmt: skip
        assert "AGREE" in r.stdout
    r = minicnn("verify", "--weights", weights, "--input", folder / "x_nhwc.npy", "--input-layout", "CHW",
                "--method", "guided", "--map", folder / "guided.npz", "--out", folder / "n")  # fmt: skip
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_float32_ties_are_named(tmp_path):
    """minicnn's float32 map against Captum's float64 map of the same weights (--map): exit 1,
    "float32-ties" first, with the ReLU signs float32 flipped. And the --against path's own check:
    the float64 rerun of both sides agrees, so a float32 disagreement there would be named so."""
    import argparse
    import copy
    import json

    from verify_cases import near_tie_net

    from minicnn.cli.cmd_verify import _float64_check
    from minicnn.tools.captum_reference import captum_map

    oracle("captum")
    net, x = near_tie_net()
    mc.save(net, tmp_path / "ties.h5")
    np.save(tmp_path / "x.npy", x)
    wide = copy.deepcopy(net).astype(np.float64)
    np.save(tmp_path / "ref.npy", captum_map(wide, x.astype(np.float64), "gradient", [1]))
    r = minicnn("verify", "--weights", tmp_path / "ties.h5", "--input", tmp_path / "x.npy", "--target", "1",
                "--method", "gradient", "--map", tmp_path / "ref.npy", "--tol", "1e-4",
                "--out", tmp_path / "o", "--json")  # fmt: skip
    assert r.code == 1, r.stderr
    diagnosis = json.loads(r.stdout[r.stdout.index("{") :])["diagnosis"]
    assert diagnosis[0]["cause"] == "float32-ties" and "ReLU signs" in diagnosis[0]["detail"], diagnosis
    args = argparse.Namespace(against="captum", torch_model=None, method="gradient", tol=1e-4, size=8,
                              stride=4, fill="zero")  # fmt: skip
    ties = _float64_check(net, x, args, [1], None, False)
    assert ties is not None and ties.cause == "float32-ties" and ties.residual < 1e-12
