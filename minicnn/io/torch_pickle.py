"""Reading a PyTorch state dict without torch and without running anything from the file.

``torch.save`` writes Python pickles. A pickle is a small program: its GLOBAL/STACK_GLOBAL opcodes
import any callable by name and REDUCE calls it, so ``pickle.load`` of an untrusted file can run a
shell command. This reader runs the opcode stream with ``pickle.Unpickler`` but overrides
``find_class`` (the only way a pickle reaches a callable, see the Python docs, "Restricting
Globals") and ``persistent_load`` (how torch points at tensor bytes), so that the only things a file
can ask for are the records a state dict needs:

    collections.OrderedDict                  the state dict itself (and its empty hooks dicts)
    torch._utils._rebuild_tensor_v2          a tensor: (storage, offset, size, stride, ...)
    torch._utils._rebuild_tensor             the same record as written by torch < 0.4
    torch._utils._rebuild_parameter          an nn.Parameter wrapping a tensor
    torch.<Type>Storage                      the element type of a storage (FloatStorage, ...)

Each is mapped to minicnn's own harmless function or marker, never to torch's; anything else is
refused with one MinicnnError line naming what the file asked for. Tensors become ``TensorRef``
records (key, dtype, offset, shape, stride) first; their bytes are read only when asked for, after
every declared size was checked against the bytes really present (so a header cannot make us
allocate more than the file holds), straight into a NumPy array (one copy, no torch).

Two container formats (torch/serialization.py):

    zip (torch >= 1.6)    ``<name>/data.pkl`` the pickle; ``<name>/data/<key>`` the raw bytes of
                          storage <key>, stored uncompressed; ``<name>/byteorder`` "little"/"big".
                          persistent id: ("storage", storage type, key, location, numel)
    legacy (torch < 1.6)  five pickles in a row: magic number 0x1950a86a20f9469cfc6c, protocol
                          version 1001, a sys_info dict (``little_endian``), the object, the sorted
                          list of storage keys; then for each key an int64 element count and the
                          bytes. persistent id: ("storage", type, key, location, numel, view)

The downloadable ``vgg16-397923af.pth`` is the legacy format.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

#: torch storage type name -> NumPy dtype of its elements ("bfloat16" is converted on read)
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("float32"),
    "DoubleStorage": np.dtype("float64"),
    "HalfStorage": np.dtype("float16"),
    "BFloat16Storage": np.dtype("uint16"),  # no bfloat16 in NumPy: the top half of a float32
    "LongStorage": np.dtype("int64"),
    "IntStorage": np.dtype("int32"),
    "ShortStorage": np.dtype("int16"),
    "CharStorage": np.dtype("int8"),
    "ByteStorage": np.dtype("uint8"),
    "BoolStorage": np.dtype("bool"),
}

ALLOWED = (
    "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_tensor, "
    "torch._utils._rebuild_parameter, torch.<Type>Storage"
)


@dataclass(frozen=True)
class StorageType:
    """The marker a pickle's ``torch.FloatStorage`` (etc.) turns into: just its name and dtype."""

    name: str
    dtype: np.dtype

    def __reduce__(self):  # pragma: no cover - never pickled again
        raise TypeError("not picklable")


@dataclass(frozen=True)
class StorageRef:
    """A storage named by a persistent id: its key in the file, element type and element count."""

    key: str
    stype: StorageType
    numel: int


class TensorRef:
    """A tensor declared by the pickle, not yet read: storage, element offset, shape, strides.

    shape and stride are tuples of ints in elements (torch's convention); ``dtype`` is the NumPy
    dtype the array will have (float32 for bfloat16 storages).
    """

    __slots__ = ("storage", "offset", "shape", "stride")

    def __init__(self, storage, offset, shape, stride):
        if not isinstance(storage, StorageRef):
            raise MinicnnError("a tensor record does not point at a storage")
        try:
            self.offset = int(offset)
            self.shape = tuple(int(s) for s in shape)
            self.stride = tuple(int(s) for s in stride)
        except (TypeError, ValueError):
            raise MinicnnError("a tensor record has a malformed size or stride") from None
        self.storage = storage
        if (
            len(self.shape) != len(self.stride)
            or min((self.offset, *self.shape, *self.stride), default=0) < 0
        ):
            raise MinicnnError(f"a tensor record has an invalid size {self.shape} or stride {self.stride}")
        if any(self.shape) or not self.shape:
            last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride) if n > 0)
            if all(self.shape) and last >= storage.numel:
                raise MinicnnError(
                    f"a tensor of shape {self.shape} reaches element {last} of storage {storage.key!r}, "
                    f"which holds only {storage.numel}"
                )

    def __setstate__(self, state):
        raise MinicnnError("refused: the pickle tries to set attributes on a tensor")

    @property
    def dtype(self) -> np.dtype:
        return (
            np.dtype("float32") if self.storage.stype.name == "BFloat16Storage" else self.storage.stype.dtype
        )


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, hooks=None, *extra):
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, *extra):
    if not isinstance(data, TensorRef):
        raise MinicnnError("a parameter record does not wrap a tensor")
    return data


_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class RestrictedUnpickler(pickle.Unpickler):
    """A pickle.Unpickler whose globals are the allow-list above and whose persistent ids must be
    torch storage references. ``persistent`` is "zip" or "legacy" (their ids differ by one field),
    or None for the pickles that hold no tensors (the legacy header)."""

    def __init__(self, file, persistent: str | None):
        super().__init__(file)
        self.persistent = persistent
        self.storages: dict[str, StorageRef] = {}

    def find_class(self, module, name):
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name, STORAGE_DTYPES[name])
        raise MinicnnError(
            f"refused: the pickle asks for {module}.{name}, which a state dict does not need "
            f"(allowed: {ALLOWED}); save model.state_dict() with torch.save"
        )

    def persistent_load(self, pid):
        n = {"zip": 5, "legacy": 6}.get(self.persistent)
        if not (isinstance(pid, tuple) and len(pid) == n and pid[0] == "storage"):
            raise MinicnnError(f"refused: unexpected persistent id {str(pid)[:60]!r} (expected a storage)")
        _, stype, key, _location, numel = pid[:5]
        if not isinstance(stype, StorageType):
            raise MinicnnError("refused: a storage record without a torch storage type")
        if n == 6 and pid[5] is not None:
            raise MinicnnError("storage views (legacy format) are not supported")
        if not isinstance(numel, int) or numel < 0:
            raise MinicnnError(f"storage {key!r} has an invalid element count {numel!r}")
        key = str(key)
        ref = StorageRef(key, stype, numel)
        if self.storages.setdefault(key, ref) != ref:
            raise MinicnnError(f"storage {key!r} is declared twice with different types or sizes")
        return ref


def _unpickle(data_or_file, persistent):
    """Run one pickle from bytes or a file object through the restricted unpickler."""
    f = io.BytesIO(data_or_file) if isinstance(data_or_file, bytes) else data_or_file
    up = RestrictedUnpickler(f, persistent)
    try:
        obj = up.load()
    except MinicnnError:
        raise
    except RecursionError:
        raise MinicnnError("the pickle is nested too deeply") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, struct.error, MemoryError, UnicodeDecodeError) as exc:  # fmt: skip
        raise MinicnnError(f"damaged or truncated pickle ({type(exc).__name__}: {_first(exc)})") from None
    return obj, up.storages


def _first(exc) -> str:
    return str(exc).splitlines()[0] if str(exc) else ""


# -- the two containers -------------------------------------------------------------------------
class TorchFile:
    """A parsed ``torch.save`` file: ``tensors`` (name -> TensorRef), read with ``array(name)``.

    Only the pickle is read when the object is made; tensor bytes are read on demand. Use as a
    context manager (or call ``close``).
    """

    def __init__(self, path, fmt: str):
        self.path = Path(path)
        self.format = fmt  # "torch-zip" or "torch-legacy"
        self._file = open(self.path, "rb")
        self._size = self.path.stat().st_size
        try:
            obj, storages = self._parse_zip() if fmt == "torch-zip" else self._parse_legacy()
            self.tensors = _state_dict(obj)
            self._storages = storages
        except BaseException:
            self._file.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._file.close()

    # zip: locate data.pkl, parse it, map storage keys to (offset, length) of stored entries
    def _parse_zip(self):
        try:
            self._zip = zipfile.ZipFile(self._file)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise MinicnnError(f"truncated or damaged zip archive ({_first(exc)})") from None
        names = self._zip.namelist()
        pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise MinicnnError("zip archive without <name>/data.pkl: not a torch.save file")
        self._prefix = pkls[0][: -len("data.pkl")]
        if f"{self._prefix}byteorder" in names:
            order = self._zip.read(f"{self._prefix}byteorder").decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise MinicnnError(f"unknown byte order {order!r} in the archive")
            self._big = order == "big"
        else:
            self._big = False
        info = self._zip.getinfo(pkls[0])
        if info.file_size > self._size:
            raise MinicnnError("data.pkl declares more bytes than the file holds")
        try:
            data = self._zip.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, zlib_error()) as exc:
            raise MinicnnError(f"truncated or damaged zip archive ({_first(exc)})") from None
        return _unpickle(data, "zip")

    def _zip_span(self, ref: StorageRef) -> tuple[int, int]:
        """(offset in the file, byte length) of storage ``ref``'s stored, uncompressed entry."""
        try:
            info = self._zip.getinfo(f"{self._prefix}data/{ref.key}")
        except KeyError:
            raise MinicnnError(f"storage {ref.key!r} is missing from the archive") from None
        if info.compress_type != zipfile.ZIP_STORED:
            raise MinicnnError(f"storage {ref.key!r} is compressed; torch.save stores storages uncompressed")
        self._file.seek(info.header_offset)
        header = self._file.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise MinicnnError(f"storage {ref.key!r}: damaged zip entry header")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        return info.header_offset + 30 + name_len + extra_len, info.file_size

    # legacy: five pickles, then each storage as int64 count + bytes, in the order of the key list
    def _parse_legacy(self):
        f = self._file
        magic, _ = _unpickle(f, None)
        if magic != LEGACY_MAGIC:
            raise MinicnnError("not a torch.save file (wrong magic number)")
        version, _ = _unpickle(f, None)
        if version != LEGACY_PROTOCOL:
            raise MinicnnError(f"unsupported legacy torch protocol {version!r} (expected {LEGACY_PROTOCOL})")
        info, _ = _unpickle(f, None)
        if not isinstance(info, dict):
            raise MinicnnError("damaged legacy header (sys_info is not a dict)")
        self._big = not info.get("little_endian", True)
        obj, storages = _unpickle(f, "legacy")
        keys, _ = _unpickle(f, None)
        if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
            raise MinicnnError("the legacy storage list does not match the storages the pickle declares")
        self._spans = {}
        pos = f.tell()
        for key in map(str, keys):  # walk the count headers only; the bytes are read on demand
            ref = storages[key]
            f.seek(pos)
            head = f.read(8)
            if len(head) != 8:
                raise MinicnnError(f"truncated file: storage {key!r} is missing")
            (count,) = struct.unpack(">q" if self._big else "<q", head)
            if count != ref.numel:
                raise MinicnnError(f"storage {key!r} holds {count} elements, the pickle declares {ref.numel}")
            nbytes = count * ref.stype.dtype.itemsize
            if pos + 8 + nbytes > self._size:
                raise MinicnnError(
                    f"truncated file: storage {key!r} needs {nbytes} bytes, "
                    f"{max(self._size - pos - 8, 0)} remain"
                )
            self._spans[key] = (pos + 8, nbytes)
            pos += 8 + nbytes
        return obj, storages

    # -- reading tensors --------------------------------------------------------------------
    def _span(self, ref: StorageRef) -> tuple[int, int]:
        offset, nbytes = self._zip_span(ref) if self.format == "torch-zip" else self._spans[ref.key]
        need = ref.numel * ref.stype.dtype.itemsize
        if nbytes != need:
            raise MinicnnError(
                f"storage {ref.key!r} has {nbytes} bytes, its {ref.numel} elements need {need}"
            )
        if offset + nbytes > self._size:
            raise MinicnnError(f"truncated file: storage {ref.key!r} ends beyond the end of the file")
        return offset, nbytes

    def array(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a new, writable, C-contiguous NumPy array of ``tensors[name].dtype``."""
        t = self.tensors[name]
        ref = t.storage
        offset, nbytes = self._span(ref)
        dtype = ref.stype.dtype.newbyteorder(">" if self._big else "<")
        count = int(np.prod(t.shape, dtype=np.int64))
        contiguous = _contiguous_strides(t.shape) == t.stride or count <= 1
        if contiguous:  # read only the tensor's own elements, straight into the result
            start, length = t.offset, count
        else:
            start, length = 0, ref.numel
        out = np.empty(length, dtype=dtype)
        self._file.seek(offset + start * dtype.itemsize)
        got = self._file.readinto(memoryview(out).cast("B"))
        if got != out.nbytes:
            raise MinicnnError(f"truncated file: tensor {name!r} is cut short")
        if not contiguous:
            itemsize = dtype.itemsize
            out = np.lib.stride_tricks.as_strided(
                out[t.offset :], shape=t.shape, strides=[s * itemsize for s in t.stride]
            ).copy()
        out = out.reshape(t.shape)
        if ref.stype.name == "BFloat16Storage":
            out = (out.astype(np.uint32) << 16).view(np.float32)
        if self._big:
            out = out.astype(out.dtype.newbyteorder("="))
        return out


def zlib_error():
    import zlib

    return zlib.error


def _contiguous_strides(shape) -> tuple:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _state_dict(obj) -> dict[str, TensorRef]:
    """The name -> TensorRef mapping inside the unpickled object, or a MinicnnError saying what it is.

    Accepts a state dict, or a checkpoint dict with one under "state_dict" or "model"; entries that
    are not tensors (torch's ``_metadata`` is an attribute, not an entry) are refused.
    """
    if isinstance(obj, dict) and not any(isinstance(v, TensorRef) for v in obj.values()):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise MinicnnError(f"expected a state dict (names -> tensors), found {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, TensorRef)]
    if bad:
        raise MinicnnError(f"entry {bad[0]!r} of the state dict is not a tensor")
    return dict(obj)


# -- detection ----------------------------------------------------------------------------------
def sniff(head: bytes, path) -> str | None:
    """ "torch-zip", "torch-legacy" or None from the first bytes of a file (and, for a zip, its
    table of contents: a Keras ``.keras`` file is a zip too)."""
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, EOFError):
            return "torch-zip"  # a damaged zip: let the reader say what is wrong with it
        return "torch-zip" if any(n.endswith("/data.pkl") for n in names) else None
    # the legacy format opens with a pickle (PROTO 2+) of the 10-byte magic number (LONG1)
    if len(head) >= 14 and head[0] == 0x80 and head[2] == 0x8A and head[3] == 10:
        return "torch-legacy" if int.from_bytes(head[4:14], "little") == LEGACY_MAGIC else None
    return None


def read_state_dict(path, fmt: str | None = None) -> dict[str, np.ndarray]:
    """Every tensor of a ``torch.save``d state dict as NumPy arrays (for tests and small files).

    fmt: "torch-zip" / "torch-legacy", or None to detect it. MinicnnError on anything else.
    """
    path = Path(path)
    if fmt is None:
        with open(path, "rb") as f:
            fmt = sniff(f.read(16), path)
        if fmt is None:
            raise MinicnnError(f"{path}: not a torch.save file")
    with TorchFile(path, fmt) as tf:
        return {name: tf.array(name) for name in tf.tensors}
