"""What ``--resume`` reuses: a shard file only when the code, the model and the shard's images are
the ones the run asking would use. Each test changes one thing a shard's result depends on (a file
of the package outside tools/, one image edited under the same name, another .npz of the same
length), checks that exactly the affected shards run again, and that the answer equals a fresh run;
a resume with nothing changed runs nothing (the check can pass as well as fail)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from jobs_support import LAYER

from minicnn.cli.main import main
from minicnn.jobs import driver, shards
from minicnn.paths import HELDOUT

SMALL = ["--layer", LAYER, "--channels", "0", "1", "--k", "3", "--shard-size", "10", "--batch-size", "5",
         "--no-progress", "--save-arrays", "--overwrite"]  # fmt: skip


def topk(source, out, *extra):
    """``minicnn topk`` in this process -> (its arrays, the scan shards run: {(start, stop)})."""
    ran = []
    original = driver.save_shard

    def spy(path, arrays, provenance):
        if provenance["job"] == "topk-scan":
            ran.append(tuple(provenance["shard"]))
        return original(path, arrays, provenance)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(driver, "save_shard", spy)
        args = ["topk", "--image", str(source), "--out", str(out), "--work", str(out / "work"), *SMALL]
        assert main([*args, *map(str, extra)]) == 0
    with np.load(out / f"{LAYER}_top3.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
    return arrays, set(ran)


def assert_same(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name


@pytest.fixture
def pixels():
    with np.load(HELDOUT) as data:
        return data["images"][:60]


@pytest.fixture
def folder(tmp_path, pixels):
    """30 held-out digits as PNG files d00.png ... d29.png."""
    from PIL import Image

    path = tmp_path / "data"
    path.mkdir()
    for i, img in enumerate(pixels[:30]):
        Image.fromarray(img).save(path / f"d{i:02d}.png")
    return path


ALL = {(0, 10), (10, 20), (20, 30)}


def test_a_changed_file_outside_tools_recomputes_every_shard(folder, tmp_path, monkeypatch):
    first, ran = topk(folder, tmp_path)
    assert ran == ALL
    _, ran = topk(folder, tmp_path, "--resume")
    assert ran == set()  # nothing changed: nothing runs
    same, changed = tmp_path / "same" / "minicnn", tmp_path / "changed" / "minicnn"
    for copy in (same, changed):  # the package's code is hashed once per process and root
        shutil.copytree(shards.PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    with open(changed / "network.py", "a") as f:
        f.write("\n# a change to the network's code\n")
    monkeypatch.setattr(shards, "PACKAGE_ROOT", same)
    _, ran = topk(folder, tmp_path, "--resume")
    assert ran == set()  # the same files elsewhere: the same code
    monkeypatch.setattr(shards, "PACKAGE_ROOT", changed)
    again, ran = topk(folder, tmp_path, "--resume")
    assert ran == ALL
    assert_same(again, first)


def test_an_image_edited_under_the_same_name_recomputes_its_shard(folder, tmp_path, pixels):
    from PIL import Image

    topk(folder, tmp_path)
    Image.fromarray(255 - pixels[12]).save(folder / "d12.png")  # same name, same size, other pixels
    again, ran = topk(folder, tmp_path, "--resume")
    assert ran == {(10, 20)}
    fresh, _ = topk(folder, tmp_path / "fresh")
    assert_same(again, fresh)


def test_another_npz_of_the_same_length_recomputes_every_shard(tmp_path, pixels):
    data = tmp_path / "digits.npz"
    np.savez(data, images=pixels[:30])
    first, ran = topk(data, tmp_path)
    assert ran == ALL
    np.savez(data, images=pixels[30:60])  # the same length and shape, other images
    again, ran = topk(data, tmp_path, "--resume")
    assert ran == ALL
    fresh, _ = topk(data, tmp_path / "fresh")
    assert_same(again, fresh)
    assert not np.array_equal(again["values"], first["values"])
