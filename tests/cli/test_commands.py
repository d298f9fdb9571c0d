"""Every subcommand as a subprocess on the shipped models: exit 0, the expected files, PNGs that
decode with the size the figure layout implies."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import minicnn, ok, panels_width, png_size
from support import assert_close

from minicnn.cli.main import COMMANDS

DIGIT = 224  # 28x28 digits are upscaled 8x
N = 4  # shipped digits used by default, one per class: 0, 1, 2, 3


def sample_names():
    """The names the CLI gives the default samples: the first held-out digit of each class."""
    from minicnn import paths

    with np.load(paths.WEIGHTS_DIR / "mnist_heldout.npz") as d:
        labels = d["labels"]
    return [f"heldout{int(np.flatnonzero(labels == c)[0])}_label{c}" for c in range(N)]


def test_top_level_help_lists_every_command():
    r = ok("--help")
    for name in COMMANDS:
        assert name in r.stdout, f"{name} missing from minicnn --help"
    assert "minicnn demo" in r.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    r = ok(command, "--help")
    assert "example" in r.stdout.lower() and f"minicnn {command}" in r.stdout


def test_saliency(shipped, tmp_path):
    r = ok("saliency", "--out", tmp_path, "--save-arrays")
    names = sample_names()
    assert r.stdout.count("top-5") == N
    stems = [f"{name}_saliency_class{c}" for c, name in enumerate(names)]  # digit c is predicted as c
    for stem in stems:
        h, w = png_size(tmp_path / f"{stem}.png")
        assert w == panels_width(3, DIGIT) and h > DIGIT
        sal = np.load(tmp_path / f"{stem}.npz")["saliency"]
        assert sal.shape == (28, 28) and sal.min() >= 0 and sal.max() > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{s}.png" for s in stems] + [f"{s}.npz" for s in stems]
    )


def test_saliency_arrays_equal_the_tool(shipped, tmp_path):
    """The .npz the CLI writes holds the tool's output for the target class (no silent change)."""
    import minicnn as mc

    ok("saliency", "--out", tmp_path, "--save-arrays", "--target", "3")
    net = mc.load(shipped.DEFAULT_MODEL)
    with np.load(shipped.WEIGHTS_DIR / "mnist_heldout.npz") as d:
        images, labels = d["images"], d["labels"]
    first = int(np.flatnonzero(labels == 0)[0])
    x = mc.preprocess(images[first][:, :, None], net.meta["preprocess"])
    expected = mc.saliency(net, x, 3)[0]
    # the CLI ran a batch of four, this a batch of one: equal up to float32 summation order
    saved = np.load(tmp_path / f"heldout{first}_label0_saliency_class3.npz")["saliency"]
    assert_close(saved, expected, what="saliency")


def test_reconstruct(shipped, tmp_path):
    r = ok("reconstruct", "--out", tmp_path, "--save-arrays")
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == N and "layer" in r.stdout
    for p in pngs:
        h, w = png_size(p)
        assert w == panels_width(4, DIGIT) and h > DIGIT  # input + three modes
    arrays = sorted(tmp_path.glob("*.npz"))
    assert len(arrays) == N and all({"deconvnet", "gradient", "guided"} <= set(np.load(a)) for a in arrays)


def test_classmodel(shipped, tmp_path):
    import re

    r = ok("classmodel", "--out", tmp_path, "--steps", "5", "--target", "7")
    assert "recognised as" in r.stdout
    first, last = map(float, re.search(r"objective (\S+) -> (\S+),", r.stdout).groups())
    assert last > first, "the ascent did not move (a dead start image?)"
    h, w = png_size(tmp_path / "classmodels_class7.png")
    assert h > 112 and w >= 112


def test_bench(shipped):
    r = ok("bench", "--batch", "2", "--repeats", "1")
    assert "forward" in r.stdout and "saliency" in r.stdout and "median" in r.stdout
    listed = ok("bench", "--list").stdout.split()
    from cli_helpers import REPO

    assert listed == sorted(p.stem for p in (REPO / "benchmarks").glob("*.py") if p.stem != "harness")


def test_bench_help_examples_run(shipped, tmp_path):
    """Every example in 'minicnn bench --help' works as written (from another folder, as a user
    runs it), except the GPU one where there is no GPU; --script's example names a listed script
    (running it is a benchmark, not a test)."""
    import shlex

    from minicnn.backend import gpu_available
    from minicnn.cli.cmd_bench import EPILOG

    examples = [
        shlex.split(line.split("#")[0])[1:] for line in EPILOG.splitlines() if line.startswith("  minicnn ")
    ]
    assert len(examples) >= 5, EPILOG
    listed = ok("bench", "--list", cwd=tmp_path).stdout.split()
    for argv in examples:
        if "--script" in argv:
            assert argv[argv.index("--script") + 1] in listed
        elif "gpu" not in argv or gpu_available():
            r = ok(*argv, "--no-progress", cwd=tmp_path)
            assert "saliency" in r.stdout or "--list" in argv, r.stdout
    small = ok("bench", "--weights", "vgg16", "--size", "64", "--batch", "1", "--repeats", "1", "--json")
    assert json.loads(small.stdout)["settings"]["shape"] == [3, 64, 64]


def test_bench_options_are_checked_before_anything_runs(tmp_path):
    for argv, expected in [
        (["--size", "16"], "--size: expected a size >= 32"),
        (["--batch", "0"], "--batch: expected a positive integer, got 0"),
        (["--repeats", "x"], "--repeats: expected a positive integer, got 'x'"),
    ]:
        r = minicnn("bench", "--weights", tmp_path / "missing.h5", *argv)
        assert r.code == 2 and len(r.stderr.splitlines()) == 1 and expected in r.stderr, r.stderr


def test_cam_on_the_gap_model(shipped, tmp_path):
    r = ok("cam", "--out", tmp_path, "--save-arrays")
    assert "CAM and Grad-CAM" in r.stdout
    for c, name in enumerate(sample_names()):
        h, w = png_size(tmp_path / f"{name}_cam_class{c}.png")
        assert w == panels_width(5, DIGIT) and h > DIGIT  # input, CAM x2, Grad-CAM x2
        assert np.load(tmp_path / f"{name}_cam_class{c}.npz")["cam"].shape == (28, 28)


def test_gradcam_on_the_vgg_model_with_a_folder_of_pngs(shipped, tmp_path):
    from PIL import Image

    folder = tmp_path / "digits"
    folder.mkdir()
    with np.load(shipped.WEIGHTS_DIR / "mnist_heldout.npz") as d:
        for i in range(2):
            Image.fromarray(d["images"][i]).save(folder / f"digit{i}.png")
    (folder / "notes.txt").write_text("not an image: ignored by suffix")
    out = tmp_path / "out"
    r = ok("cam", "--weights", shipped.DEFAULT_MODEL, "--image", folder, "--out", out)
    assert "Grad-CAM only" in r.stdout and r.stdout.count("top-5") == 2
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 and [n.split("_cam_class")[0] for n in written] == ["digit0", "digit1"]
    assert png_size(out / written[0])[1] == panels_width(3, DIGIT)


def test_occlusion(shipped, tmp_path):
    r = ok("occlusion", "--out", tmp_path, "--save-arrays", "--size", "10", "--stride", "6")
    assert "4x4 positions" in r.stdout  # (28 - 10) / 6 + 1 = 4 per axis
    for c, name in enumerate(sample_names()):
        h, w = png_size(tmp_path / f"{name}_occlusion_class{c}.png")
        assert w == panels_width(4, DIGIT) and h > DIGIT
        prob = np.load(tmp_path / f"{name}_occlusion_class{c}.npz")["prob"]
        assert prob.shape == (4, 4) and 0 <= prob.min() <= prob.max() <= 1


def test_maximize(shipped, tmp_path):
    import minicnn as mc

    net = mc.load(shipped.DEFAULT_MODEL)
    layer = next(layer.name for layer in net.layers if layer.kind == "Conv2D")
    r = ok("maximize", "--layer", layer, "--units", "0", "1", "2,3,3", "--steps", "5", "--out", tmp_path)
    assert r.stdout.count("activation") == 3
    h, w = png_size(tmp_path / f"{layer}_maximized.png")
    assert w == panels_width(3, 112) and h > 112  # three tiles, digits shown at 4x in grids


def test_invert(shipped, tmp_path):
    import minicnn as mc

    net = mc.load(shipped.DEFAULT_MODEL)
    pools = [layer.name for layer in net.layers if layer.kind == "MaxPool2D"][:2]
    r = ok("invert", "--layer", ",".join(pools), "--steps", "5", "--out", tmp_path, "--save-arrays")
    assert r.stdout.count("relative feature error") == 2
    h, w = png_size(tmp_path / "inversions.png")
    assert w == panels_width(3, 112) and h > 2 * 112  # two digits x (input + two layers)
    arrays = sorted(tmp_path.glob("*_invert.npz"))
    assert len(arrays) == 2 and all(np.load(a)[pools[0]].shape == (1, 28, 28) for a in arrays)


def test_equivalence(shipped, tmp_path):
    import csv

    r = ok("equivalence", "--out", tmp_path)
    assert "max rel diff" in r.stdout
    table = (tmp_path / "equivalence.txt").read_text()
    assert table.strip() in r.stdout
    with open(tmp_path / "equivalence.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    kinds = {row["kind"] for row in rows}
    assert {"Conv2D", "ReLU", "MaxPool2D", "network"} <= kinds
    for row in rows:
        if row["kind"] in ("Conv2D", "MaxPool2D", "Dense"):
            assert float(row["max_rel_diff"]) < 1e-5, row
    assert any(float(row["max_rel_diff"]) > 0 for row in rows if row["kind"] == "ReLU")
    for c, name in enumerate(sample_names()):
        h, w = png_size(tmp_path / f"{name}_modes_class{c}.png")
        assert w == panels_width(4, DIGIT) and h > DIGIT


def test_topk(shipped, tmp_path):
    import minicnn as mc

    net = mc.load(shipped.DEFAULT_MODEL)
    layer = next(layer.name for layer in net.layers if layer.kind == "ReLU")
    r = ok("topk", "--layer", layer, "--channels", "0", "2", "--count", "30", "--k", "4", "--out", tmp_path,
           "--save-arrays")  # fmt: skip
    assert "top-4 over 30 images" in r.stdout
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        f"{layer}_ch0_top4.png",
        f"{layer}_ch2_top4.png",
    ]
    index = np.load(tmp_path / f"{layer}_top4.npz")["index"]
    assert index.shape == (2, 4) and index.min() >= 0 and index.max() < 30
    h, w = png_size(tmp_path / f"{layer}_ch0_top4.png")
    assert h > 0 and w > 0


def test_localize_on_the_shipped_canvases(shipped, tmp_path):
    r = ok("localize", "--count", "2", "--out", tmp_path)
    assert r.stdout.count("IoU with the true box") == 2 and "of 2 canvases" in r.stdout
    for name in sorted(tmp_path.glob("*_localization_class*.png")):
        h, w = png_size(name)
        assert w == panels_width(3, 168) and h > 168  # 84x84 canvases shown at 2x
    assert len(list(tmp_path.glob("*_localization_class*.png"))) == 2


def test_localize_keeps_the_size_of_a_users_canvas(shipped, tmp_path):
    from PIL import Image

    with np.load(shipped.WEIGHTS_DIR / "clutter.npz") as d:
        Image.fromarray(d["images"][7]).save(tmp_path / "canvas.png")
    out = tmp_path / "out"
    r = ok("localize", "--image", tmp_path / "canvas.png", "--out", out, "--save-arrays")
    assert "canvas: box (x0, y0, x1, y1)" in r.stdout
    (saved,) = out.glob("canvas_localization_class*.npz")
    assert np.load(saved)["mask"].shape == (84, 84)  # not resized to the 28x28 digits
    assert png_size(saved.with_suffix(".png"))[1] == panels_width(3, 168)


# -- long work is stated before it starts -------------------------------------------------------------
def test_maximize_and_invert_state_their_work_first(shipped, tmp_path):
    """The passes counted by hand, the statement printed before the first result line."""
    r = ok("maximize", "--units", "0", "1", "2", "--starts", "2", "--steps", "5", "--out", tmp_path / "m")
    lines = r.stdout.splitlines()
    (i,) = [
        n for n, line in enumerate(lines) if "3 units x 2 starts x 5 steps = 30 forward + backward" in line
    ]
    assert i < min(n for n, line in enumerate(lines) if line.strip().startswith("unit "))
    assert "ms a pass (measured)" in lines[i] and "for less" not in lines[i]  # seconds, not minutes
    r = ok("invert", "--layer", "block1_pool,fc1_relu", "--steps", "4", "--out", tmp_path / "i")
    lines = r.stdout.splitlines()
    (i,) = [
        n for n, line in enumerate(lines) if "2 layers x 4 steps x 2 images = 16 forward + backward" in line
    ]
    assert i < min(n for n, line in enumerate(lines) if "relative feature error" in line)


def test_long_work_names_the_options_that_ask_for_less(shipped, monkeypatch):
    """The estimate is passes x one measured pass; above a minute it says which options ask for less.
    A pass measured at 0.5 s (faked): 1600 passes are 800 s, 100 passes 50 s."""
    import minicnn as mc
    from minicnn.cli import estimate
    from minicnn.cli.context import say_work
    from minicnn.cli.report import Report

    monkeypatch.setattr(estimate, "measure_pass", lambda net, shape=None: estimate.PassTime(0.5, 0.5))
    net = mc.load(shipped.DEFAULT_MODEL)
    long, short = Report("x"), Report("y")
    assert say_work(long, net, "8 units x 200 steps", 1600, "--steps") == 800.0
    assert long.messages == [
        "  8 units x 200 steps = 1,600 forward + backward passes of one image, about 13 min 20 s at 500 ms "
        "a pass (measured); --steps for less"
    ]
    assert say_work(short, net, "100 steps", 100, "--steps") == 50.0
    assert short.messages[0].endswith("about 50 s at 500 ms a pass (measured)")


def test_verify_states_the_occlusion_passes_first(shipped, tmp_path):
    """28 x 28 digits, a 14-pixel occluder every 7 pixels: corners 0, 7, 14 on each axis, 9 positions,
    run by minicnn and again by Captum."""
    pytest.importorskip("captum")
    r = ok("verify", "--method", "occlusion", "--against", "captum", "--size", "14", "--stride", "7",
           "--out", tmp_path)  # fmt: skip
    lines = r.stdout.splitlines()
    (i,) = [
        n for n, line in enumerate(lines)
        if "occlusion: 9 positions x 1 images x 2 (minicnn and the reference) = 18 forward" in line
    ]  # fmt: skip
    assert i < min(n for n, line in enumerate(lines) if "max relative difference" in line)
