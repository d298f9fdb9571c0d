"""The newcomer's path (issue 17): outputs that never overwrite each other, ambiguous class names
refused, the class index always printed, --target label, --json and --save-arrays for scripts,
occluder defaults scaled to the image, progress bars with an opt-out, bench's spread, --version,
and class models that move from the shipped models' stored mean image."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from cli_helpers import REPO, minicnn, ok
from PIL import Image

import minicnn as mc
from minicnn.cli.cmd_demo import command_args
from minicnn.cli.main import main
from minicnn.errors import MinicnnError


def run_command(name, **options):
    run, args = command_args(name, **options)
    return run(args)


@pytest.fixture
def digits(shipped):
    """The first held-out image of each class (28, 28) uint8 and its label."""
    with np.load(shipped.HELDOUT) as d:
        images, labels = d["images"], d["labels"]
    first = [int(np.flatnonzero(labels == c)[0]) for c in range(10)]
    return images[first], labels[first]


# -- names that cannot collide ---------------------------------------------------------------------
def test_same_stem_images_get_distinct_outputs_and_reruns_never_overwrite(digits, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(digits[0][3]).save(folder / "cat.png")  # a 3 and a 7 under the same stem
    Image.fromarray(digits[0][7]).save(folder / "cat.jpg", quality=100)
    out = tmp_path / "out"
    ok("saliency", "--image", folder, "--out", out, "--save-arrays")
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        f"cat_{ext}_saliency_class{c}.{kind}"
        for ext, c in (("jpg", 7), ("png", 3))
        for kind in ("npz", "png")
    ]
    a, b = (
        np.load(out / f"cat_{ext}_saliency_class{c}.npz")["saliency"] for ext, c in (("jpg", 7), ("png", 3))
    )
    assert not np.allclose(a, b)  # two different maps, both kept
    ok("saliency", "--image", folder, "--out", out, "--target", "1")  # another target: other names
    assert len(list(out.glob("*_class1.png"))) == 2
    again = ok("saliency", "--image", folder / "cat.png", "--out", out)  # the same run again: numbered
    assert (out / "cat_saliency_class3.png").is_file() and "--overwrite replaces it" not in again.stdout
    rerun = ok("saliency", "--image", folder / "cat.png", "--out", out)
    assert (out / "cat_saliency_class3-2.png").is_file() and "exists; --overwrite replaces it" in rerun.stdout
    before = sorted(out.iterdir())
    ok("saliency", "--image", folder / "cat.png", "--out", out, "--overwrite")
    assert sorted(out.iterdir()) == before


# -- class names -----------------------------------------------------------------------------------
def imagenet_net():
    from minicnn.io.imagenet import class_names

    return SimpleNamespace(meta={"class_names": class_names()}, input_shape=None)


@pytest.mark.parametrize("name, candidates", [("crane", (134, 517)), ("maillot", (638, 639))])
def test_ambiguous_imagenet_names_are_refused_with_every_candidate(name, candidates):
    from minicnn.cli.classes import parse_target

    with pytest.raises(MinicnnError, match="ambiguous") as err:
        parse_target(imagenet_net(), name)
    for index in candidates:
        assert f"{index} ({name})" in str(err.value)
    assert parse_target(imagenet_net(), "tabby") == 281  # one match still works
    assert parse_target(imagenet_net(), str(candidates[1])) == candidates[1]


def test_ambiguous_name_at_the_command_line_exits_2_with_the_candidates(shipped, tmp_path):
    net = mc.load(shipped.DEFAULT_MODEL)
    net.meta["class_names"] = ["zero", "crane", "two", "crane", "four", "five", "six", "seven", "8", "9"]
    mc.save(net, tmp_path / "cranes.h5")
    r = minicnn("saliency", "--weights", tmp_path / "cranes.h5", "--target", "crane", "--out", tmp_path / "o")
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "ambiguous" in r.stderr and "1 (crane)" in r.stderr and "3 (crane)" in r.stderr
    assert not (tmp_path / "o").exists()
    r = ok("saliency", "--weights", tmp_path / "cranes.h5", "--target", "two", "--out", tmp_path / "o")
    assert "target (--target): class 2 (two)" in r.stdout  # the index used is printed


def test_predicted_targets_are_printed_with_their_index(shipped, tmp_path):
    r = ok("saliency", "--out", tmp_path)
    assert "targets (predicted class):" in r.stdout
    assert all(f"_label{c}: class {c} ({c})" in r.stdout for c in range(4))


def test_localize_target_label_uses_the_true_classes(shipped, tmp_path):
    with np.load(shipped.WEIGHTS_DIR / "clutter.npz") as d:
        labels = d["labels"][:11].astype(int).tolist()
    report = run_command("localize", count=11, target="label", out=tmp_path, no_progress=True)
    assert [t["index"] for t in report.targets] == labels
    predicted = run_command("localize", count=11, out=tmp_path / "p", no_progress=True)
    assert [t["index"] for t in predicted.targets] != labels  # the GAP model misreads canvas 10
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "x.png")
    with pytest.raises(MinicnnError, match="--target label needs the shipped samples"):
        run_command("localize", image=tmp_path / "x.png", target="label", out=tmp_path / "q")


# -- output for scripts ----------------------------------------------------------------------------
def json_of(capsys, *argv) -> dict:
    assert main(list(map(str, argv))) == 0
    return json.loads(capsys.readouterr().out)  # stdout holds the JSON alone


def test_json_names_every_file_written_and_the_targets(shipped, tmp_path, capsys):
    out = tmp_path / "sal"
    s = json_of(capsys, "saliency", "--json", "--save-arrays", "--out", out, "--target", "3")
    assert sorted(s["files"]) == sorted(str(p.absolute()) for p in out.iterdir()) and len(s["files"]) == 8
    assert {f["path"] for f in s["figures"]} <= set(s["files"])
    assert s["model"] == str(shipped.DEFAULT_MODEL) and len(s["inputs"]) == 4
    assert s["targets"][0] == {"image": s["inputs"][0], "index": 3, "name": "3"}
    assert s["methods"] and "Simonyan" in s["methods"][0]
    npz = np.load(next(f for f in s["files"] if f.endswith(".npz")))
    meta = json.loads(str(npz["meta"]))
    assert (meta["target_index"], meta["target_name"], meta["method"]) == (3, "3", "saliency")
    assert meta["model"] == str(shipped.DEFAULT_MODEL) and npz["saliency"].shape == (28, 28)


@pytest.mark.parametrize(
    "argv",
    [["info", "{model}"], ["bench", "--batch", "1", "--repeats", "2"],
     ["occlusion", "--size", "14", "--stride", "14"], ["classmodel", "--target", "1", "--steps", "2"],
     ["maximize", "--units", "0", "--steps", "2"],
     ["reconstruct"], ["cam"], ["equivalence"], ["invert", "--steps", "2"], ["localize", "--count", "1"],
     ["topk", "--count", "8", "--k", "2", "--channels", "0"]],
    ids=lambda a: a[0],
)  # fmt: skip
def test_every_command_prints_json(shipped, tmp_path, capsys, argv):
    argv = [a.format(model=shipped.DEFAULT_MODEL) for a in argv]
    if argv[0] not in ("info", "bench"):
        argv += ["--out", tmp_path, "--no-progress"]
    s = json_of(capsys, *argv, "--json")
    assert s["command"] == argv[0] and s["exit_code"] == 0 and s["model"]
    assert s["numbers"], "no key numbers"
    assert all(f.startswith(str(tmp_path)) and (tmp_path / f).is_file() for f in s["files"])


def test_bench_reports_min_median_max():
    from minicnn.cli.cmd_bench import spread

    for times in ([3.0], [1.0, 5.0], [0.5, 0.7, 0.9, 4.0, 9.0]):
        assert spread(sorted(times)) == (min(times), statistics.median(times), max(times))


# -- defaults scaled to the input, progress ---------------------------------------------------------
def test_occluder_defaults_scale_with_the_image(shipped, tmp_path):
    from minicnn.tools.occlusion import default_occluder

    assert default_occluder(28) == (8, 2) and default_occluder(224) == (64, 16)
    x = np.zeros((1, 1, 28, 28), np.float32)
    assert mc.occlusion(mc.load(shipped.DEFAULT_MODEL), x, 0, progress=False).prob.shape == (
        1,
        11,
        11,
    )  # API too
    report = run_command("occlusion", out=tmp_path)
    assert any("8x8 occluder, stride 2 (scaled to the image)" in m for m in report.messages)
    assert report.settings["positions"] == [11, 11]  # ceil((28 - 8) / 2) + 1 per axis, as on 224x224


def test_progress_bars_show_the_unit_and_can_be_turned_off(shipped, tmp_path):
    import os

    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("TQDM_DISABLE", None)
    argv = [sys.executable, "-m", "minicnn", "occlusion", "--size", "14", "--stride", "7", "--out"]
    shown = subprocess.run([*argv, tmp_path / "a"], env=env, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and "position" in shown.stderr and "100%" in shown.stderr
    hidden = subprocess.run(
        [*argv, tmp_path / "b", "--no-progress"], env=env, capture_output=True, text=True, timeout=300
    )
    assert hidden.returncode == 0 and "position" not in hidden.stderr and "%|" not in hidden.stderr


def test_api_progress_flag(shipped, capsys):
    net = mc.load(shipped.DEFAULT_MODEL)
    mc.class_model(net, 1, steps=2, progress=True)
    assert "step" in capsys.readouterr().err
    mc.class_model(net, 1, steps=2, progress=False)
    assert capsys.readouterr().err == ""


# -- class models from the stored mean image -------------------------------------------------------
def test_shipped_models_store_the_mean_heldout_digit(shipped):
    with np.load(shipped.HELDOUT) as d:
        expected = d["images"].astype(np.float64).mean(axis=0) / 255.0  # computed here, independently
    for path in (shipped.DEFAULT_MODEL, shipped.GAP_MODEL):
        mean = np.asarray(mc.load(path).meta["mean_image"], dtype=np.float64)
        assert mean.shape == (1, 28, 28)
        np.testing.assert_allclose(mean[0], expected, rtol=0, atol=1e-6)


def test_class_model_api_default_is_recognised_as_its_class(shipped):
    """README's API line: mc.class_model(net, classes) with every default, on the shipped VGG-style
    model: each of the 10 images is classified as the class it was made for."""
    net = mc.load(shipped.DEFAULT_MODEL)
    result = mc.class_model(net, list(range(10)), progress=False)
    assert net.forward(result.image).argmax(axis=1).tolist() == list(range(10))
    # the black start (the API default before the mean image was stored) does not move at all
    black = mc.class_model(net, [0, 1], steps=3, mean_image=np.zeros((1, 28, 28), np.float32), progress=False)
    assert np.array_equal(black.image, np.zeros_like(black.image))


# -- CAM and Grad-CAM ---------------------------------------------------------------------------------
def test_cam_and_gradcam_coincide_only_where_the_theory_says(shipped, digits):
    from minicnn.cli.cmd_cam import coincide
    from minicnn.tools.cam import gradcam_layer

    x = mc.preprocess(digits[0][:4, :, :, None], "unit")
    gap = mc.load(shipped.GAP_MODEL)
    layer = gradcam_layer(gap, None, (1, 28, 28))
    cam = mc.cam(gap, x, "predicted", upsample=False)
    grad = mc.grad_cam(gap, x, "predicted", layer, upsample=False)
    assert coincide(cam, grad)
    bent = np.array(grad, copy=True)
    bent[0, 0, 0] += 0.05 * bent[0].max()  # one cell changed: no longer CAM's positive part
    assert not coincide(cam, bent)
    assert not coincide(cam, mc.grad_cam(gap, x, "predicted", "block2_conv2_relu", upsample=False))


def test_version_everywhere():
    from importlib.metadata import version

    r = subprocess.run(
        [sys.executable, "-m", "minicnn", "--version"], capture_output=True, text=True, timeout=60
    )
    assert (
        r.returncode == 0
        and r.stdout.strip() == f"minicnn {version('minicnn-vis')}" == f"minicnn {mc.__version__}"
    )


# -- the distribution's name in every install hint ---------------------------------------------------
def install_hints() -> list[tuple[str, str]]:
    """(file, text) of every string constant and docstring in the package that says 'pip install'
    (read from the syntax tree, so a hint split over lines or inside an f-string is found)."""
    import ast

    found = []
    for path in sorted((REPO / "minicnn").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "pip install" in node.value:
                found.append((path.relative_to(REPO).as_posix(), node.value))
    return found


def test_install_hints_name_the_free_distribution_never_the_taken_one():
    """'minicnn' on the package index is an unrelated project: no hint may install it. The extras'
    hints are built by errors.install_hint from the name in pyproject.toml; torch hints name the
    CPU index (torch from the index is the CUDA build)."""
    import re

    import tomllib

    from minicnn.errors import DISTRIBUTION, TORCH_CPU_INSTALL, install_hint

    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"] == DISTRIBUTION
    assert DISTRIBUTION == "minicnn-vis" and install_hint("onnx") == 'pip install "minicnn-vis[onnx]"'
    hints = install_hints()
    assert len(hints) >= 4, hints  # the walk really finds the hints
    taken = re.compile(r"pip install ['\"]?minicnn(?![-\w])")  # minicnn, "minicnn[dask]", 'minicnn[gpu]'
    assert taken.search('pip install "minicnn[dask]"') and not taken.search("pip install minicnn-vis")
    assert not [h for h in hints if taken.search(h[1])], hints
    torch_hints = [h for h in hints if re.search(r"pip install[^.;,]*\btorch\b", h[1]) and "/cpu" not in h[1]]
    assert not torch_hints, f"name errors.TORCH_CPU_INSTALL instead: {torch_hints}"
    assert "--index-url https://download.pytorch.org/whl/cpu" in TORCH_CPU_INSTALL
    sources = "".join(p.read_text(encoding="utf-8") for p in (REPO / "minicnn").rglob("*.py"))
    for extra in ("onnx", "dask", "gpu", "train"):  # each missing extra's error builds its hint
        assert f"install_hint('{extra}')" in sources, extra
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert not taken.search(readme) and '"minicnn-vis[onnx]"' in readme


def test_a_missing_extra_names_the_free_distribution(monkeypatch):
    """The hint a user really sees: reading ONNX without the onnx package."""
    import builtins

    from minicnn.io import onnx_loader

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(MinicnnError) as err:
        onnx_loader._import_onnx()
    assert str(err.value) == 'reading ONNX files needs the onnx package: pip install "minicnn-vis[onnx]"'


# -- the demo on the user's own model and images ------------------------------------------------------
def test_demo_runs_every_tool_on_the_users_model_and_images(monkeypatch, tmp_path):
    """--weights and --image reach every tool that has those options; the digit-only settings
    (occluder size, dataset count) are dropped; the page names the model and the commands."""
    import argparse
    import importlib

    from minicnn.cli import cmd_demo
    from minicnn.cli.report import Report
    from minicnn.render.save import save_png

    calls = {}

    def fake(command):
        def run(args):
            calls[command] = args
            args.out.mkdir(parents=True)
            path = save_png(np.zeros((8, 8, 3), np.uint8), args.out / "x.png")
            return Report(command, paths=[path], figures={f"{command} title": path})

        return run

    for command, *_ in cmd_demo.STEPS:
        monkeypatch.setattr(importlib.import_module(f"minicnn.cli.cmd_{command}"), "run", fake(command))
    model, photos = tmp_path / "mine.h5", tmp_path / "photos"
    import shutil

    from minicnn import paths

    shutil.copy(paths.DEFAULT_MODEL, model)  # the demo reads the model and counts the images first
    photos.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(photos / "a.png")
    args = argparse.Namespace(out=tmp_path / "demo", device="cpu", seed=0, weights=model, image=photos)
    assert cmd_demo.run(args).exit_code == 0
    for command, args in calls.items():
        assert args.weights == model, command
        if hasattr(args, "image"):
            assert args.image == photos, command
    assert calls["occlusion"].size is None and calls["occlusion"].stride is None  # scaled to the photos
    assert calls["topk"].count == 200  # the command's own default, not the demo's digit setting
    page = (tmp_path / "demo" / "index.html").read_text(encoding="utf-8")
    assert f"model {model}" in page and f"minicnn saliency --weights {model} --image {photos}" in page
    assert 'alt="saliency title"' in page  # the figure's own caption


def test_saliency_signed_times_input_is_the_gradient_times_the_image(shipped, digits, tmp_path):
    """README's saliency options are real: --signed --times-input writes g * x for the one channel of
    a digit, g = dS_c/dI from the pass record's backward (not from mc.saliency)."""
    r = run_command("saliency", out=tmp_path, save_arrays=True, signed=True, times_input=True, target="7")
    net = mc.load(shipped.DEFAULT_MODEL)
    x = mc.preprocess(digits[0][:4, :, :, None], "unit").astype(np.float32)
    rec = net.run(x)
    dy = np.zeros((4, 10), np.float32)
    dy[:, 7] = 1.0
    expected = (rec.backward(dy) * x)[:, 0]
    saved = sorted(p for p in r.paths if p.suffix == ".npz")
    assert len(saved) == 4 and all("_saliency_signed_x_input_class7" in p.name for p in saved)
    got = {p.name.split("_saliency")[0]: np.load(p)["saliency"] for p in saved}
    for i, name in enumerate(r.inputs):
        np.testing.assert_allclose(got[name], expected[i], rtol=1e-5, atol=1e-6 * np.abs(expected[i]).max())
    assert (expected < 0).any() and (expected > 0).any()  # the sign is really kept
