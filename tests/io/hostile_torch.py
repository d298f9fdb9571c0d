"""Hostile ``torch.save`` files, built byte by byte: pickles written opcode by opcode (the opcodes of
Python's Lib/pickletools.py) and zip archives whose directory says what the test needs.

Used by tests/io/test_torch_hostile.py; each builder returns the file's bytes or writes its path.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

ARCHIVE = "archive"


# -- pickle opcodes ------------------------------------------------------------------------------
def text(s: str) -> bytes:
    raw = s.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE


def integer(v: int) -> bytes:
    return b"J" + struct.pack("<i", v)  # BININT


def ints(values) -> bytes:
    return b"(" + b"".join(integer(v) for v in values) + b"t"  # MARK ... TUPLE


def global_(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def storage(key: str, numel: int, stype: str = "FloatStorage") -> bytes:
    """BINPERSID of ("storage", torch.<stype>, key, "cpu", numel): the zip format's storage id."""
    return b"(" + text("storage") + global_("torch", stype) + text(key) + text("cpu") + integer(numel) + b"tQ"


def empty_ordered_dict() -> bytes:
    return global_("collections", "OrderedDict") + b")R"


def tensor(storage_ops: bytes, offset: int, shape, stride) -> bytes:
    """torch._utils._rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict())."""
    args = b"(" + storage_ops + integer(offset) + ints(shape) + ints(stride) + b"\x89" + empty_ordered_dict()
    return global_("torch._utils", "_rebuild_tensor_v2") + args + b"tR"


def state_dict(items: list[tuple[bytes, bytes]], after: bytes = b"") -> bytes:
    """An OrderedDict filled by SETITEMS with (key ops, value ops) pairs; ``after`` runs before STOP."""
    body = b"".join(k + v for k, v in items)
    return b"\x80\x02" + empty_ordered_dict() + b"(" + body + b"u" + after + b"."


# -- zip archives -------------------------------------------------------------------------------
def torch_zip(path: Path, pickle_bytes: bytes, storages: dict[str, bytes], extra=()) -> Path:
    """A torch.save-style archive: archive/data.pkl, byteorder, version, archive/data/<key>, all
    stored; ``extra`` adds (name, bytes) entries after them (duplicates allowed)."""
    import warnings

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is the point of some files
        z.writestr(f"{ARCHIVE}/data.pkl", pickle_bytes)
        z.writestr(f"{ARCHIVE}/byteorder", b"little")
        z.writestr(f"{ARCHIVE}/version", b"3\n")  # torch.load requires it
        for key, data in storages.items():
            z.writestr(f"{ARCHIVE}/data/{key}", data)
        for name, data in extra:
            z.writestr(name, data)
    return path


def set_sizes(data: bytes, name: str, stored: int, size: int) -> bytes:
    """The archive ``data`` with entry ``name``'s sizes changed in its local header and in the
    central directory (APPNOTE.TXT 4.3.7 and 4.3.12: sizes at 18/22 and 20/24)."""
    out = bytearray(data)
    raw = name.encode()
    local = out.index(b"PK\x03\x04")
    while True:  # the local header whose name is ``name``
        (n,) = struct.unpack("<H", out[local + 26 : local + 28])
        if out[local + 30 : local + 30 + n] == raw:
            break
        local = out.index(b"PK\x03\x04", local + 4)
    out[local + 18 : local + 26] = struct.pack("<II", stored, size)
    central = out.index(b"PK\x01\x02")
    while True:
        (n,) = struct.unpack("<H", out[central + 28 : central + 30])
        if out[central + 46 : central + 46 + n] == raw:
            break
        central = out.index(b"PK\x01\x02", central + 4)
    out[central + 20 : central + 28] = struct.pack("<II", stored, size)
    return bytes(out)


def deflated_pickle_zip(path: Path, payload_chunks, declared: int, crc: int) -> Path:
    """An archive whose only entry, archive/data.pkl, is deflated from ``payload_chunks`` (an
    iterable of bytes, compressed as a stream) but declares ``declared`` uncompressed bytes."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = b"".join(deflater.compress(c) for c in payload_chunks) + deflater.flush()
    name = f"{ARCHIVE}/data.pkl".encode()
    local = struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(body), declared, len(name), 0
    )
    central = struct.pack(
        "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(body), declared,
        len(name), 0, 0, 0, 0, 0, 0,
    )  # fmt: skip
    start = len(local) + len(name) + len(body)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(name), start, 0)
    path.write_bytes(local + name + body + central + name + end)
    return path
