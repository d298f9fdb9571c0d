"""A dataset as the workers see it: a short description (where the images are, their stable ids,
how to turn them into network input), never the pixels, so that it is cheap to send to a worker.

Two kinds: a folder of image files (recursive, sorted by relative path; the id of an image is its
path relative to the folder, in POSIX form, so ids are stable across machines and runs), and an
.npz holding one array of images (ids ``images[0]``, ``images[1]``, ...). Workers read the images
themselves, from a path they all see (a shared filesystem on a cluster). An image that cannot be read
is reported by index and reason, never raised: one bad file must not stop a long run halfway.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError

NPZ_KEYS = ("images", "x")  # the array an .npz dataset holds, the first one present


@dataclass(frozen=True)
class Dataset:
    """The description of a dataset.

    source: "folder" or "npz"; path: absolute path of the folder or the .npz file; ids: one stable id
    per image (relative path, or ``key[i]``); shape: (C, H, W) network input; preprocess: the
    network's convention (``io.preprocess``), applied to pixel images; dtype: the network's dtype
    name; key: the array's name in an .npz; positions: the dataset positions of ``ids`` when this is
    a subset sent to a worker (None: ids are positions 0, 1, ...).
    """

    source: str
    path: str
    ids: tuple
    shape: tuple
    preprocess: str
    dtype: str
    key: str | None = None
    positions: tuple | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices) -> Dataset:
        """The same dataset restricted to positions ``indices`` (what one task needs: a task
        carries the ids of its own images, not the 50,000 of the whole dataset)."""
        indices = tuple(int(i) for i in indices)
        return replace(self, ids=tuple(self.id_of(i) for i in indices), positions=indices)

    def select(self, indices) -> Dataset:
        """A new dataset of the images at ``indices``, numbered 0, 1, ... in that order (the
        images an evaluation file names)."""
        return replace(self, ids=tuple(self.id_of(int(i)) for i in indices), positions=None)

    def id_of(self, index: int) -> str:
        """The id of the image at dataset position ``index``."""
        if self.positions is None:
            return self.ids[index]
        return self.ids[self.positions.index(index)]

    def fingerprint(self, indices) -> str:
        """sha256 of the images at dataset positions ``indices`` and of how they are read: a shard's
        result is valid for exactly these images, at this shape and preprocessing.

        It covers the source's path, each image's id, and the content: for a folder, each file's
        size and sha256 (an image edited under the same name is another image); for an .npz, the
        file's size and sha256 (another array of the same length is another dataset). Read on the
        client, once per shard; an .npz is hashed once per process (``_npz_hash``).
        """
        from minicnn.jobs.shards import file_hash

        h = hashlib.sha256(
            repr((self.source, self.path, self.shape, self.preprocess, self.dtype, self.key)).encode()
        )
        if self.source == "npz":
            h.update(_npz_hash(self.path).encode())
        for i in indices:
            name = self.id_of(int(i))
            h.update(name.encode() + b"\0")
            if self.source == "folder":
                path = Path(self.path) / name
                try:
                    h.update(f"{path.stat().st_size}:{file_hash(path)}".encode())
                except OSError as exc:  # unreadable now: the worker reports it; a later run retries
                    h.update(f"unreadable:{type(exc).__name__}".encode())
        return h.hexdigest()

    def read(self, indices):
        """Images at ``indices`` -> (ok (B,) int64, images (B, C, H, W) of self.dtype, bad), where
        ``bad`` lists (index, reason) for each image that could not be read (left out of ok)."""
        indices = [int(i) for i in indices]
        if not indices:  # nothing to read is an empty batch, not an error of the preprocessing
            return np.zeros(0, np.int64), np.zeros((0, *self.shape), dtype=self.dtype), []
        if self.source == "npz":
            return self._read_npz(indices)
        root = Path(self.path)
        if not root.is_dir():  # on a worker: the folder is not mounted where the client saw it
            raise MinicnnError(
                f"dataset folder {root} cannot be read here (workers read images from a path they all see)"
            )
        ok, images, bad = [], [], []
        for i in indices:
            try:
                images.append(self._load_file(root / self.id_of(i)))
                ok.append(i)
            except Exception as exc:  # one bad file is reported, never the end of the run
                text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                bad.append((i, text))
        stacked = np.stack(images) if images else np.zeros((0, *self.shape), dtype=self.dtype)
        return np.asarray(ok, dtype=np.int64), stacked, bad

    def _load_file(self, path):
        from minicnn.io.images import load_image
        from minicnn.io.preprocess import preprocess

        c, h, w = self.shape
        img = load_image(path, size=(h, w), mode="L" if c == 1 else "RGB")
        return preprocess(img, self.preprocess, dtype=np.dtype(self.dtype))[0]

    def _read_npz(self, indices):
        array = _npz_array(self.path, self.key)
        rows = [int(self.id_of(i)[len(self.key) + 1 : -1]) for i in indices]  # the id is key[row]
        return np.asarray(indices, dtype=np.int64), as_network_input(array[rows], self), []


_NPZ_CACHE: dict = {}
_NPZ_HASHES: dict = {}


def _npz_hash(path: str) -> str:
    """ "<size>:<sha256>" of an .npz file, computed once per process for each (path, size, mtime, inode)."""
    from minicnn.jobs.shards import file_hash

    stat = Path(path).stat()
    key = (path, stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _NPZ_HASHES:
        _NPZ_HASHES.clear()
        _NPZ_HASHES[key] = f"{stat.st_size}:{file_hash(path)}"
    return _NPZ_HASHES[key]


def _npz_array(path: str, key: str):
    """The image array of an .npz, opened once per process (a worker keeps it for its next shard).

    An uncompressed member (np.savez) is memory-mapped, so a worker reads only the rows of its shard
    and its memory does not grow with the dataset; a compressed one (np.savez_compressed) cannot
    be, and is read whole (use a folder of images, or np.savez, for a dataset larger than memory).
    """
    if (path, key) not in _NPZ_CACHE:
        if not Path(path).is_file():
            raise MinicnnError(
                f"dataset file {path} cannot be read here (workers read it from a path they all see)"
            )
        _NPZ_CACHE.clear()  # one dataset at a time: memory stays one array
        array = _mapped_member(path, key)
        if array is None:
            with np.load(path) as data:
                array = np.asarray(data[key])
        _NPZ_CACHE[(path, key)] = array
    return _NPZ_CACHE[(path, key)]


def _mapped_member(path: str, key: str):
    """A read-only np.memmap of the stored (uncompressed) member ``key`` of an .npz, else None.
    An .npz is a zip of .npy files: a stored member's bytes sit in the file as they are, after its
    zip local header (30 bytes, the name, the extra field) and its .npy header."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as z:
        info = z.getinfo(f"{key}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        f.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if dtype.hasobject:
        return None
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran else "C")


def as_network_input(images, dataset: Dataset):
    """An .npz's images -> (B, C, H, W) network input. uint8 arrays are pixels, (B, H, W) or
    (B, H, W, C), preprocessed with the network's convention as image files would be; float arrays
    are taken as network input already, (B, C, H, W)."""
    from minicnn.io.preprocess import preprocess

    if images.dtype == np.uint8:
        pixels = images[..., None] if images.ndim == 3 else images
        return preprocess(pixels, dataset.preprocess, dtype=np.dtype(dataset.dtype))
    return np.ascontiguousarray(images, dtype=dataset.dtype)


def open_dataset(path, shape, preprocess: str, dtype="float32", count: int | None = None) -> Dataset:
    """Describe the dataset at ``path``: a folder of images (recursive) or an .npz.

    shape: (C, H, W) the network's input; preprocess: its convention; count: keep the first
    ``count`` images only. One-line MinicnnError for a missing path, an empty folder, an .npz
    without images or images of the wrong shape.
    """
    path = Path(path).absolute()
    if len(tuple(shape or ())) != 3:
        raise MinicnnError("a dataset needs the network's input shape (C, H, W) (meta['input_shape'])")
    shape = tuple(int(v) for v in shape)
    if path.is_dir():
        from minicnn.io.image_folder import image_files

        ids = tuple(p.relative_to(path).as_posix() for p in image_files(path, recursive=True))
        source, key = "folder", None
    elif path.is_file() and path.suffix.lower() == ".npz":
        try:
            with np.load(path) as data:
                key = next((k for k in NPZ_KEYS if k in data.files), None)
                if key is None:
                    raise MinicnnError(f"{path}: expected an array named {' or '.join(NPZ_KEYS)}")
                n, item = _npz_shape(data, key)
        except MinicnnError:
            raise
        except Exception as exc:
            raise MinicnnError(f"{path}: not a readable .npz file ({type(exc).__name__})") from None
        _check_item(path, item, shape)
        ids = tuple(f"{key}[{i}]" for i in range(n))
        source = "npz"
        if not ids:
            raise MinicnnError(f"{path}: the dataset is empty")
    elif not path.exists():
        raise MinicnnError(f"dataset {path} not found (expected a folder of images or an .npz)")
    else:
        raise MinicnnError(f"dataset {path}: expected a folder of images or an .npz file")
    if count is not None:
        ids = ids[:count]
    return Dataset(source, str(path), ids, shape, preprocess or "none", np.dtype(dtype).name, key)


def _npz_shape(data, key):
    """(N, (dtype, item shape)) of an .npz member (np.load reads the member once, here)."""
    array = data[key]
    return len(array), (array.dtype, array.shape[1:])


def _check_item(path, item, shape):
    dtype, rest = item
    c, h, w = shape
    # complex, bool, object or text arrays are not images: a cast would drop the imaginary part (with
    # only NumPy's warning) or turn True into 1.0 silently
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise MinicnnError(
            f"{path}: images of dtype {dtype}; expected uint8 pixels or real-valued (float) network input"
        )
    if dtype == np.uint8:
        ok = rest in ((h, w), (h, w, c)) if c == 1 else rest == (h, w, c)
        want = f"uint8 pixels (N, {h}, {w}{', ' + str(c) if c != 1 else ''})"
    else:
        ok, want = rest == (c, h, w), f"float network input (N, {c}, {h}, {w})"
    if not ok:
        raise MinicnnError(f"{path}: images of shape {rest} ({dtype}); the network expects {want}")
