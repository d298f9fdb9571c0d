"""Fixtures of the job tests: the 500 shipped held-out digits written out as PNG files (in one
folder per class, so the dataset is read recursively), and one command line for all runners."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.paths import HELDOUT

# a layer after a pool (its receptive field crosses a stride), 4 maps, 10 shards of 50 images
LAYER = "block2_conv1_relu"
TOPK_ARGS = ["--layer", LAYER, "--channels", "0", "3", "7", "12", "--k", "9", "--shard-size", "50",
             "--batch-size", "25", "--save-arrays", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="session")
def digit_folder(tmp_path_factory):
    """(folder, ids): the held-out digits as PNGs in label<d>/ subfolders; ids are the sorted
    relative paths, the order the dataset must use."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("digits")
    with np.load(HELDOUT) as data:
        images, labels = data["images"], data["labels"]
    ids = []
    for i, (img, label) in enumerate(zip(images, labels)):
        (folder / f"label{label}").mkdir(exist_ok=True)
        name = f"label{label}/digit{i:03d}.png"
        Image.fromarray(img).save(folder / name)
        ids.append(name)
    return folder, sorted(ids)


def run_topk(folder, out, *extra):
    """``minicnn topk`` in this process; returns (exit code, the --save-arrays .npz as a dict)."""
    from minicnn.cli.main import main

    code = main(["topk", "--image", str(folder), "--out", str(out), *TOPK_ARGS, *map(str, extra)])
    path = out / f"{LAYER}_top9.npz"
    if code != 0 or not path.is_file():
        return code, None
    with np.load(path) as data:
        return code, {k: data[k] for k in data.files if k != "meta"}


def assert_same(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].shape == b[name].shape, name
        assert np.array_equal(a[name], b[name]), f"{name} differs"


@pytest.fixture(scope="session")
def reference(digit_folder, tmp_path_factory):
    """The in-process run, the one every other runner must equal: its --save-arrays arrays."""
    code, arrays = run_topk(digit_folder[0], tmp_path_factory.mktemp("inprocess"))
    assert code == 0
    return arrays
