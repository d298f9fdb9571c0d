"""Short names of the shipped files (minicnn.paths.SHIPPED): ``--weights mnist_gap``, ``--image
digits``, ``mc.load("mnist_vgg")`` from any folder; an existing path of the same spelling wins; an
unknown name is one line listing the short names.

The weights a short name loads are compared with the arrays read straight from the shipped file by
h5py; the outputs of ``--image digits`` with those of the default run (the shipped digits)."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from cli_helpers import minicnn, ok

import minicnn as mc
from minicnn import paths
from minicnn.errors import MinicnnError

MODELS = ["mnist_vgg", "mnist_gap", "mnist_vgg_permuted"]
IMAGES = ["digits", "clutter", "photos", "astronaut", "cat", "coffee", "rocket"]


def test_the_short_names_are_these():
    assert paths.short_names("model") == MODELS
    assert paths.short_names("images") == IMAGES
    for name in MODELS + IMAGES:
        assert paths.shipped(name).exists(), name


@pytest.mark.parametrize("name", MODELS)
def test_a_model_short_name_loads_the_shipped_file(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # any folder: nothing named like the model here
    net = mc.load(name)
    with h5py.File(paths.WEIGHTS_DIR / f"{name}.h5", "r") as f:
        for layer in net.layers:
            for key in layer.param_shapes():
                np.testing.assert_array_equal(getattr(layer, key), f[f"params/{layer.name}/{key}"][()])


def test_an_existing_path_wins_over_a_short_name(tmp_path, monkeypatch):
    """A file called ``mnist_vgg`` in the current folder (here: a copy of the GAP model) is read."""
    shutil.copy(paths.GAP_MODEL, tmp_path / "mnist_vgg")
    monkeypatch.chdir(tmp_path)
    assert any(layer.is_global_pool for layer in mc.load("mnist_vgg").layers)
    assert not any(layer.is_global_pool for layer in mc.load(paths.DEFAULT_MODEL).layers)
    r = ok("info", "mnist_vgg", cwd=tmp_path)
    assert "GlobalAvgPool2D" in r.stdout
    assert "GlobalAvgPool2D" not in ok("info", "mnist_vgg", cwd=tmp_path / "..").stdout


def test_unknown_names_are_one_line_listing_the_short_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MinicnnError, match="nope: no such file, nor a shipped model") as info:
        mc.load("nope")
    assert "mnist_vgg, mnist_gap, mnist_vgg_permuted" in str(info.value)
    for args, expected in [
        (("info", "mnist_vg"), "mnist_vg: no such file, nor a shipped model (short names: mnist_vgg, "),
        (
            ("saliency", "--weights", "mnist_vg", "--out", "o"),
            "not found (expected a model file, or a shipped",
        ),
        (("saliency", "--image", "digit", "--out", "o"), "a shipped sample: digits, clutter, photos"),
    ]:
        r = minicnn(*args, cwd=tmp_path)
        lines = r.stderr.strip().splitlines()
        assert r.code == 2 and len(lines) == 1 and expected in lines[0], r.stderr
    assert not (tmp_path / "o").exists()


def _written(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix == ".png"}


def test_image_digits_is_the_default_input(tmp_path):
    """``--image digits`` reads the shipped held-out digits exactly as no --image does; ``--weights
    mnist_gap`` is the GAP model from any folder."""
    ok("saliency", "--weights", "mnist_gap", "--out", tmp_path / "default", cwd=tmp_path)
    ok("saliency", "--weights", "mnist_gap", "--image", "digits", "--out", tmp_path / "named", cwd=tmp_path)
    default, named = _written(tmp_path / "default"), _written(tmp_path / "named")
    assert len(default) >= 4 and default == named


def test_image_photo_names_and_a_folder_that_wins(tmp_path):
    r = ok("saliency", "--image", "cat", "--out", tmp_path / "cat", cwd=tmp_path)
    assert "cat" in r.stdout and any(name.startswith("cat") for name in _written(tmp_path / "cat"))
    assert sorted(p.stem for p in paths.shipped("photos").glob("*.jpg")) == IMAGES[3:]
    # a folder called digits in the current folder is read, not the shipped digits
    (tmp_path / "digits").mkdir()
    shutil.copy(paths.shipped("coffee"), tmp_path / "digits" / "mine.jpg")
    ok("saliency", "--image", "digits", "--out", tmp_path / "own", cwd=tmp_path)
    assert {name.split("_")[0] for name in _written(tmp_path / "own")} == {"mine"}


def test_a_dataset_job_takes_the_short_name_of_a_model(tmp_path):
    """--weights mnist_vgg reaches the job's workers as the shipped file (resolved by the parser),
    not as a path 'mnist_vgg' in the current folder."""
    from cli_helpers import ok

    r = ok("topk", "--weights", "mnist_vgg", "--layer", "block1_conv1", "--channels", "0", "--image",
           "digits", "--count", "20", "--out", tmp_path / "out", cwd=tmp_path)  # fmt: skip
    assert "mnist_vgg.h5" in r.stdout + r.stderr
