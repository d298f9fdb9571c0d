"""The dataset a job reads: a folder (recursive, sorted by relative path) and an .npz (memory-mapped
when stored uncompressed) give the same network input for the same pixels; shards are fixed."""

from __future__ import annotations

import numpy as np
import pytest

from minicnn.errors import MinicnnError
from minicnn.jobs.dataset import _NPZ_CACHE, _npz_array, open_dataset
from minicnn.jobs.shards import plan
from minicnn.paths import HELDOUT


def test_folder_and_npz_read_the_same_images(digit_folder, tmp_path):
    folder, ids = digit_folder
    with np.load(HELDOUT) as data:
        pixels = data["images"]
    np.savez(tmp_path / "stored.npz", images=pixels)
    np.savez_compressed(tmp_path / "packed.npz", images=pixels)
    from_folder = open_dataset(folder, (1, 28, 28), "unit")
    assert list(from_folder.ids) == ids  # recursive, sorted by relative path
    rows = [int(name.split("digit")[1][:3]) for name in ids]  # digitNNN.png holds images[NNN]
    pick = [0, 7, 123, 499]
    _, x_folder, bad = from_folder.read(pick)
    assert not bad
    for name in ("stored.npz", "packed.npz"):
        data = open_dataset(tmp_path / name, (1, 28, 28), "unit")
        _, x_npz, _ = data.read([rows[i] for i in pick])
        assert np.array_equal(x_npz, x_folder)
        expected = (pixels[[rows[i] for i in pick]] / 255.0).astype(np.float32)[:, None]
        np.testing.assert_allclose(x_npz, expected, rtol=1e-7)
    _NPZ_CACHE.clear()
    assert isinstance(_npz_array(str(tmp_path / "stored.npz"), "images"), np.memmap)  # not read whole
    assert not isinstance(_npz_array(str(tmp_path / "packed.npz"), "images"), np.memmap)
    _NPZ_CACHE.clear()


def test_shards_do_not_depend_on_workers():
    shards = plan(23, 10)
    assert [(s.start, s.stop) for s in shards] == [(0, 10), (10, 20), (20, 23)]
    with pytest.raises(MinicnnError, match="shard size"):
        plan(5, 0)


def test_npz_of_the_wrong_shape(tmp_path):
    np.savez(tmp_path / "x.npz", images=np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(MinicnnError, match=r"images of shape \(32, 32\).*expects uint8 pixels \(N, 28, 28\)"):
        open_dataset(tmp_path / "x.npz", (1, 28, 28), "unit")
    np.savez(tmp_path / "y.npz", labels=np.zeros(3))
    with pytest.raises(MinicnnError, match="expected an array named images or x"):
        open_dataset(tmp_path / "y.npz", (1, 28, 28), "unit")
