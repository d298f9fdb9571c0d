"""Reading a PyTorch state dict without torch and without running anything from the file.

``torch.save`` writes Python pickles. A pickle is a small program: its GLOBAL/STACK_GLOBAL opcodes
import any callable by name and REDUCE calls it, so ``pickle.load`` of an untrusted file can run a
shell command. This reader runs the opcode stream in minicnn's own bounded interpreter
(minicnn/io/safe_pickle.py: no code run, sizes, memo and nesting capped), whose ``find_class`` (the
only way a pickle reaches a callable) and ``persistent_load`` (how torch points at tensor bytes) are
the ones below, so that the only things a file can ask for are the records a state dict needs:

    collections.OrderedDict                  the state dict itself (and its empty hooks dicts)
    torch._utils._rebuild_tensor_v2          a tensor: (storage, offset, size, stride, ...)
    torch._utils._rebuild_tensor             the same record as written by torch < 0.4
    torch._utils._rebuild_parameter          an nn.Parameter wrapping a tensor
    torch.<Type>Storage                      the element type of a storage (FloatStorage, ...)

Each is mapped to minicnn's own harmless function or marker, never to torch's; anything else is
refused with one MinicnnError line naming what the file asked for.

Bounds are taken once, from the file, into frozen records: a storage (``StorageRef``) is made when
the pickle names it, with the byte span its zip entry really has (legacy: its element count, checked
against the count stored before its bytes); a tensor (``TensorRef``) is checked against that record
when it is made, and nothing in the pickle can change either afterwards. A tensor's bytes are read
only when asked for, into a buffer of exactly the bytes read, and viewed by NumPy's own bounds-
checked constructor, so no header can make the reader look outside the bytes it read. A file cannot
make the reader allocate much more than its own size: the pickle is capped, a tensor may not have
more elements than its storage (an expansion by stride 0 is refused) and all tensors together may
not exceed MAX_EXPANSION times the file.

Parser differentials are refused rather than resolved: a zip archive with two entries of one name
(torch reads the first, zipfile the last) or with overlapping entries (one storage's bytes read as
another's), or a storage whose entry is larger or smaller than its declared element count.

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
import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError, quote
from minicnn.io import safe_pickle, strict_zip

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
#: the largest data.pkl read (a state dict's pickle takes about 70 bytes per tensor)
MAX_PICKLE = 32 * 1024 * 1024
#: all tensors together may hold at most this many times the file's bytes: tensors that share a
#: storage (tied weights, views) are legal, but a few bytes read as gigabytes are not
MAX_EXPANSION = 4
MAX_NDIM = 32
#: the most elements a shape may describe with its zero dimensions read as 1: an empty tensor of
#: shape (0, 2^62, 2^62) holds nothing, but NumPy cannot even make it
MAX_SHAPE = 2**48

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


@dataclass(frozen=True)
class StorageRef:
    """A storage named by a persistent id: its key, element type and element count, and where its
    bytes lie in the file (``offset``, ``nbytes`` = numel * itemsize). Frozen, made once: the
    bounds every tensor is checked against cannot change after the check."""

    key: str
    stype: StorageType
    numel: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class TensorRef:
    """A tensor declared by the pickle, checked, not yet read: storage, element offset, shape and
    strides (tuples of ints, in elements: torch's convention). ``dtype`` is the NumPy dtype the
    array will have (float32 for bfloat16 storages)."""

    storage: StorageRef
    offset: int
    shape: tuple
    stride: tuple

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def dtype(self) -> np.dtype:
        bf16 = self.storage.stype.name == "BFloat16Storage"
        return np.dtype("float32") if bf16 else self.storage.stype.dtype


def _ints(values, what: str) -> tuple:
    if not isinstance(values, tuple) or len(values) > MAX_NDIM:
        raise MinicnnError(f"a tensor record's {what} is not a tuple of at most {MAX_NDIM} ints")
    if not all(type(v) is int and v >= 0 for v in values):
        raise MinicnnError(f"a tensor record has an invalid {what} {quote(values)}")
    return values


def _tensor(storage, offset, size, stride) -> TensorRef:
    """Check a tensor record against its storage: every element it reads lies inside the storage,
    and it has no more elements than the storage (an expansion by stride 0 is refused)."""
    if not isinstance(storage, StorageRef):
        raise MinicnnError("a tensor record does not point at a storage")
    if type(offset) is not int or offset < 0:
        raise MinicnnError(f"a tensor record has an invalid offset {quote(offset)}")
    shape, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(shape) != len(stride) or math.prod(max(n, 1) for n in shape) > MAX_SHAPE:
        raise MinicnnError(f"a tensor record has size {quote(shape)} and stride {quote(stride)}")
    t = TensorRef(storage, offset, shape, stride)
    count = t.numel
    if count == 0:
        return t
    last = offset + sum((n - 1) * s for n, s in zip(shape, stride))
    if last >= storage.numel:
        raise MinicnnError(
            f"a tensor of shape {quote(shape)} reaches element {last} of storage "
            f"{quote(storage.key)}, which holds only {storage.numel}"
        )
    if count > storage.numel:
        raise MinicnnError(
            f"a tensor of shape {quote(shape)} has {count} elements over a storage of "
            f"{storage.numel}: expanded tensors (stride 0) are not read"
        )
    return t


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, hooks=None, *extra):
    return _tensor(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, *extra):
    if not isinstance(data, TensorRef):
        raise MinicnnError("a parameter record does not wrap a tensor")
    return data


def _ordered_dict():
    # torch writes OrderedDict() with no arguments and fills it by SETITEMS, which the
    # interpreter checks; items passed as arguments would bypass those checks
    return collections.OrderedDict()


_GLOBALS = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


def find_class(module, name):
    """The harmless stand-in for a global the pickle names, or a MinicnnError naming it."""
    if (module, name) in _GLOBALS:
        return _GLOBALS[(module, name)]
    if module == "torch" and name in STORAGE_DTYPES:
        return StorageType(name, STORAGE_DTYPES[name])
    raise MinicnnError(
        f"refused: the pickle asks for {quote(f'{module}.{name}')[1:-1]}, which a state dict does "
        f"not need (allowed: {ALLOWED}); save model.state_dict() with torch.save"
    )


def _no_globals(module, name):
    raise MinicnnError(f"refused: the legacy header asks for {quote(f'{module}.{name}')[1:-1]}")


class _Storages:
    """persistent_load for one pickle: each storage id becomes one StorageRef, made by ``locate``
    (key, stype, numel) -> StorageRef; a key declared twice must be declared the same way."""

    def __init__(self, fields: int, locate):
        self.fields, self.locate = fields, locate
        self.refs: dict[str, StorageRef] = {}

    def __call__(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == self.fields and pid[0] == "storage"):
            raise MinicnnError(f"refused: unexpected persistent id {quote(pid, 80)} (expected a storage)")
        _, stype, key, _location, numel = pid[:5]
        if not isinstance(stype, StorageType):
            raise MinicnnError("refused: a storage record without a torch storage type")
        if self.fields == 6 and pid[5] is not None:
            raise MinicnnError("storage views (legacy format) are not supported")
        if not isinstance(key, str) or len(key) > 64:
            raise MinicnnError(f"a storage key {quote(key, 80)} (expected a short string)")
        if type(numel) is not int or numel < 0:
            raise MinicnnError(f"storage {quote(key)} has an invalid element count {quote(numel)}")
        if key in self.refs:
            ref = self.refs[key]
            if (ref.stype, ref.numel) != (stype, numel):
                raise MinicnnError(f"storage {quote(key)} is declared twice with different types or sizes")
            return ref
        ref = self.refs[key] = self.locate(key, stype, numel)
        return ref


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
            obj = self._parse_zip() if fmt == "torch-zip" else self._parse_legacy()
            self.tensors = _state_dict(obj)
            total = sum(t.numel * t.storage.stype.dtype.itemsize for t in self.tensors.values())
            if total > MAX_EXPANSION * self._size:
                raise MinicnnError(
                    f"the tensors hold {total} bytes, more than {MAX_EXPANSION} times the file's "
                    f"{self._size}: storages are read many times over"
                )
        except BaseException:
            self._file.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._file.close()

    # zip: the archive's entries (strictly), then data.pkl, whose storages point at entries
    def _parse_zip(self):
        found = strict_zip.entries(self._file, self._size)
        pkls = [n for n in found if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise MinicnnError("zip archive without <name>/data.pkl: not a torch.save file")
        prefix = pkls[0][: -len("data.pkl")]
        self._big = False
        if f"{prefix}byteorder" in found:
            raw = strict_zip.read_entry(self._file, found[f"{prefix}byteorder"], 16)
            order = raw.decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise MinicnnError(f"unknown byte order {quote(order)} in the archive")
            self._big = order == "big"

        def locate(key, stype, numel) -> StorageRef:
            entry = found.get(f"{prefix}data/{key}")
            if entry is None:
                raise MinicnnError(f"storage {quote(key)} is missing from the archive")
            if entry.method != zipfile.ZIP_STORED:
                raise MinicnnError(
                    f"storage {quote(key)} is compressed; torch.save stores storages uncompressed"
                )
            need = numel * stype.dtype.itemsize
            if entry.size != need:
                raise MinicnnError(
                    f"storage {quote(key)} has {entry.size} bytes, its {numel} elements need {need}"
                )
            return StorageRef(key, stype, numel, entry.offset, entry.size)

        data = strict_zip.read_entry(self._file, found[pkls[0]], MAX_PICKLE)
        return _unpickle(_Reader(data), len(data), find_class, _Storages(5, locate))

    # legacy: five pickles, then each storage as int64 count + bytes, in the order of the key list
    def _parse_legacy(self):
        f = self._file

        def header():
            return _unpickle(f, self._size - f.tell(), _no_globals, None)

        if header() != LEGACY_MAGIC:
            raise MinicnnError("not a torch.save file (wrong magic number)")
        version = header()
        if version != LEGACY_PROTOCOL:
            raise MinicnnError(
                f"unsupported legacy torch protocol {quote(version)} (expected {LEGACY_PROTOCOL})"
            )
        info = header()
        if not isinstance(info, dict):
            raise MinicnnError("damaged legacy header (sys_info is not a dict)")
        self._big = not info.get("little_endian", True)
        declared: dict[str, tuple] = {}

        def locate(key, stype, numel) -> StorageRef:
            declared[key] = (stype, numel)
            return StorageRef(key, stype, numel, -1, numel * stype.dtype.itemsize)

        storages = _Storages(6, locate)
        obj = _unpickle(f, self._size - f.tell(), find_class, storages)
        keys = header()
        strings = isinstance(keys, list) and all(isinstance(k, str) for k in keys)
        if not strings or len(set(keys)) != len(keys) or set(keys) != set(declared):
            raise MinicnnError("the legacy storage list does not match the storages the pickle declares")
        # the bytes follow in the order of the key list: walk the count headers, read nothing else
        self._offsets: dict[str, int] = {}
        pos = f.tell()
        for key in keys:
            ref = storages.refs[key]
            f.seek(pos)
            head = f.read(8)
            if len(head) != 8:
                raise MinicnnError(f"truncated file: storage {quote(key)} is missing")
            (count,) = struct.unpack(">q" if self._big else "<q", head)
            if count != ref.numel:
                raise MinicnnError(
                    f"storage {quote(key)} holds {count} elements, the pickle declares {ref.numel}"
                )
            if pos + 8 + ref.nbytes > self._size:
                raise MinicnnError(
                    f"truncated file: storage {quote(key)} needs {ref.nbytes} bytes, "
                    f"{max(self._size - pos - 8, 0)} remain"
                )
            self._offsets[key] = pos + 8
            pos += 8 + ref.nbytes
        return obj

    # -- reading tensors --------------------------------------------------------------------
    def array(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a new, writable, C-contiguous NumPy array of ``tensors[name].dtype``.

        The bytes read are exactly the storage's (or, for a contiguous tensor, its own) and the
        array is NumPy's view of them, made by the constructor that checks every element it can
        reach against the buffer's length. Storages' CRC-32s are not checked, as torch.load does not
        check them (it would double the load time): a flipped weight byte loads as torch loads it.
        """
        t = self.tensors[name]
        ref = t.storage
        dtype = ref.stype.dtype.newbyteorder(">" if self._big else "<")
        size = dtype.itemsize
        count = t.numel
        start = ref.offset if self.format == "torch-zip" else self._offsets[ref.key]
        if count == 0:
            out = np.zeros(t.shape, dtype)
        else:
            contiguous = _contiguous_strides(t.shape) == t.stride or count == 1
            first, length = (t.offset, count) if contiguous else (0, ref.numel)
            buf = self._read(start + first * size, length * size, name)
            if contiguous:  # buf holds exactly the tensor's elements, in order
                out = np.ndarray(t.shape, dtype, buffer=buf)
            else:  # buf holds the whole storage; NumPy checks the strided view against it
                strides = tuple(s * size for s in t.stride)
                view = np.ndarray(t.shape, dtype, buffer=buf, offset=t.offset * size, strides=strides)
                out = np.ascontiguousarray(view)
        if ref.stype.name == "BFloat16Storage":
            out = (out.astype(np.uint32) << 16).view(np.float32)
        if self._big:
            out = out.astype(out.dtype.newbyteorder("="))
        return out

    def _read(self, offset: int, nbytes: int, name: str) -> np.ndarray:
        """Exactly ``nbytes`` bytes of the file from ``offset`` (checked against the file's size), as
        a uint8 array (np.empty: not zeroed first, unlike a bytearray, which costs a pass)."""
        if offset < 0 or offset + nbytes > self._size:
            raise MinicnnError(f"truncated file: tensor {quote(name)} ends beyond the end of the file")
        buf = np.empty(nbytes, np.uint8)
        self._file.seek(offset)
        if self._file.readinto(memoryview(buf)) != nbytes:
            raise MinicnnError(f"truncated file: tensor {quote(name)} is cut short")
        return buf


class _Reader:
    """A read-only stream over bytes (io.BytesIO copies its bytes when written to; this never does)."""

    def __init__(self, data: bytes):
        self.view, self.pos = memoryview(data), 0

    def read(self, n: int) -> bytes:
        chunk = self.view[self.pos : self.pos + n].tobytes()
        self.pos += len(chunk)
        return chunk


def _unpickle(stream, size: int, globals_, persistent):
    return safe_pickle.load(stream, size, globals_, persistent)


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
        raise MinicnnError(f"entry {quote(bad[0])} of the state dict is not a tensor")
    return dict(obj)


# -- detection ----------------------------------------------------------------------------------
def sniff(head: bytes, path) -> str | None:
    """ "torch-zip", "torch-legacy" or None from the first bytes of a file (and, for a zip, its
    table of contents: a Keras ``.keras`` file is a zip too)."""
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except strict_zip.ZIPFILE_ERRORS:
            return "torch-zip"  # a damaged zip: let the reader say what is wrong with it
        return "torch-zip" if any(n.endswith("/data.pkl") for n in names) else None
    # the legacy format opens with a pickle (PROTO 2+) of the 10-byte magic number (LONG1)
    if len(head) >= 14 and head[0] == 0x80 and head[2] == 0x8A and head[3] == 10:
        return "torch-legacy" if int.from_bytes(head[4:14], "little") == LEGACY_MAGIC else None
    return None
