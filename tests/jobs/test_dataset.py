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


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, bool])
def test_npz_of_no_real_numbers_is_refused(tmp_path, dtype):
    """A complex array would lose its imaginary part with only NumPy's warning, a boolean one would
    turn into 0.0 / 1.0: both are refused with one line, before any shard runs."""
    np.savez(tmp_path / "x.npz", images=np.ones((3, 1, 28, 28), dtype=dtype))
    with pytest.raises(MinicnnError, match=r"x.npz: images of dtype \w+; expected uint8 pixels or real"):
        open_dataset(tmp_path / "x.npz", (1, 28, 28), "unit")
    np.savez(tmp_path / "y.npz", images=np.ones((3, 1, 28, 28), dtype=np.float64))
    assert len(open_dataset(tmp_path / "y.npz", (1, 28, 28), "unit")) == 3  # a real array passes


def test_npz_with_no_images(tmp_path):
    np.savez(tmp_path / "x.npz", images=np.zeros((0, 28, 28), np.uint8))
    with pytest.raises(MinicnnError, match="the dataset is empty"):
        open_dataset(tmp_path / "x.npz", (1, 28, 28), "unit")


def test_reading_no_image_is_an_empty_batch(tmp_path, digit_folder):
    np.savez(tmp_path / "x.npz", images=np.zeros((3, 28, 28), np.uint8))
    for source in (tmp_path / "x.npz", digit_folder[0]):
        ok, images, bad = open_dataset(source, (1, 28, 28), "unit").read([])
        assert ok.shape == (0,) and ok.dtype == np.int64 and bad == []
        assert images.shape == (0, 1, 28, 28) and images.dtype == np.float32


def test_one_folder_reader_for_every_user(tmp_path):
    """io.image_folder is the one reader: the same files, in the same order, for the dataset jobs,
    mc.topk and --image (which reads the folder's own files only); hidden files, other suffixes and
    an empty folder are handled the same way everywhere."""
    from PIL import Image

    from minicnn.cli.inputs import image_files as cli_files
    from minicnn.io.image_folder import IMAGE_SUFFIXES, image_files

    names = ["b.PNG", "a.jpg", "sub/c.bmp", "sub/deeper/a.png", "z.webp"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((4, 4), np.uint8)).convert("RGB").save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.png").write_bytes(b"")
    expected = sorted(names)  # by relative POSIX path, suffixes in any case
    assert [p.relative_to(tmp_path).as_posix() for p in image_files(tmp_path)] == expected
    assert list(open_dataset(tmp_path, (1, 4, 4), "unit").ids) == expected
    assert [p.name for p in cli_files(tmp_path)] == ["a.jpg", "b.PNG", "z.webp"]  # its own files only
    assert ".png" in IMAGE_SUFFIXES and ".txt" not in IMAGE_SUFFIXES
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    for read in (image_files, cli_files, lambda p: open_dataset(p, (1, 4, 4), "unit")):
        with pytest.raises(MinicnnError, match=r"has no images \(expected files ending in .png, .jpg"):
            read(tmp_path / "empty")
