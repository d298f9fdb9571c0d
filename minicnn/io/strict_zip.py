"""A zip archive's entries as byte spans, with every ambiguity refused (for ``torch.save`` files).

A zip file names its entries twice: in the central directory at the end (what Python's zipfile and
most readers list) and in a local header before each entry's bytes. A hostile archive can make
readers disagree: two entries of one name (zipfile keeps the last, torch's reader the first), local
headers that contradict the directory, or entries whose bytes overlap, so that one entry's bytes
are read as another's. ``entries`` accepts an archive only when each name is unique, each local
header agrees with the directory, and no two entries (local header plus data) share a byte; every
entry's data span then comes from its own local header, which is where every reader finds it.

``read_entry`` reads one entry in full with a cap fixed before anything is allocated: a stored
entry is its span; a deflated one is inflated in bounded pieces and refused as soon as it yields
more than its declared size (a small file that inflates to gigabytes never does), then its CRC-32
is checked.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass

from minicnn.errors import MinicnnError, quote

_LOCAL = b"PK\x03\x04"
_LOCAL_SIZE = 30  # fixed part of a local file header (APPNOTE.TXT 4.3.7)
_PIECE = 1 << 20  # bytes inflated at a time
#: what Python's zipfile raises on a damaged directory (NotImplementedError: an unknown "version
#: needed to extract"; OSError: a seek to a negative offset the directory computes)
ZIPFILE_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error, NotImplementedError)


@dataclass(frozen=True)
class Entry:
    """One archive entry: its data's offset and stored length in the file, its uncompressed size,
    compression method and CRC-32 (from the central directory, agreed by the local header)."""

    name: str
    offset: int
    stored: int
    size: int
    method: int
    crc: int


def entries(file, file_size: int) -> dict[str, Entry]:
    """name -> Entry for the zip archive in the open binary ``file`` of ``file_size`` bytes;
    MinicnnError for a damaged archive, a repeated name, a local header that contradicts the
    central directory, or two entries that overlap."""
    try:
        infos = zipfile.ZipFile(file).infolist()
    except ZIPFILE_ERRORS as exc:
        raise MinicnnError(f"truncated or damaged zip archive ({_first(exc)})") from None
    found: dict[str, Entry] = {}
    spans = []
    for info in infos:
        if info.filename in found:
            raise MinicnnError(f"the archive holds two entries named {quote(info.filename)}")
        entry, start = _local(file, file_size, info)
        found[info.filename] = entry
        spans.append((start, entry.offset + entry.stored, info.filename))
    spans.sort()
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            raise MinicnnError(f"zip entries {quote(first)} and {quote(second)} overlap")
    return found


def _local(file, file_size: int, info: zipfile.ZipInfo) -> tuple[Entry, int]:
    """(Entry, start of its local header) from the local header the directory points at."""
    name = quote(info.filename)
    if not 0 <= info.header_offset < file_size:
        raise MinicnnError(f"zip entry {name}: its local header lies outside the file")
    file.seek(info.header_offset)
    head = file.read(_LOCAL_SIZE)
    if len(head) != _LOCAL_SIZE or head[:4] != _LOCAL:
        raise MinicnnError(f"zip entry {name}: damaged local header")
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    raw_name = file.read(name_len)
    encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
    if raw_name.decode(encoding, "replace") != info.orig_filename:
        raise MinicnnError(f"zip entry {name}: its local header names another file")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise MinicnnError(f"zip entry {name}: compression method {info.compress_type} (expected stored)")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise MinicnnError(f"zip entry {name}: stored with {info.compress_size} bytes for {info.file_size}")
    offset = info.header_offset + _LOCAL_SIZE + name_len + extra_len
    if offset + info.compress_size > file_size:
        raise MinicnnError(f"truncated file: zip entry {name} ends beyond the end of the file")
    entry = Entry(info.filename, offset, info.compress_size, info.file_size, info.compress_type, info.CRC)
    return entry, info.header_offset


def read_entry(file, entry: Entry, cap: int) -> bytes:
    """All of ``entry``'s uncompressed bytes, refused when it declares more than ``cap`` bytes,
    yields more or fewer than it declares, or fails its CRC-32."""
    name = quote(entry.name)
    if entry.size > cap:
        raise MinicnnError(f"zip entry {name} declares {entry.size} bytes, more than the {cap} accepted")
    file.seek(entry.offset)
    if entry.method == zipfile.ZIP_STORED:
        data = file.read(entry.stored)
    else:
        data = _inflate(file, entry)
    if len(data) != entry.size:
        raise MinicnnError(f"zip entry {name} holds {len(data)} bytes, its header declares {entry.size}")
    if zlib.crc32(data) != entry.crc:
        raise MinicnnError(f"zip entry {name} is damaged (CRC-32 mismatch)")
    return data


def _inflate(file, entry: Entry) -> bytes:
    """Inflate a deflated entry piece by piece, never holding more than its declared size + 1."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as zip stores it
    out = bytearray()
    left = entry.stored
    try:
        while left > 0 or inflater.unconsumed_tail:
            data = inflater.unconsumed_tail
            if not data:
                data = file.read(min(_PIECE, left))
                left -= len(data)
                if not data:
                    break
            out += inflater.decompress(data, entry.size + 1 - len(out))
            if len(out) > entry.size:
                raise MinicnnError(f"zip entry {quote(entry.name)} inflates to more than its declared size")
            if inflater.eof:
                break
    except zlib.error as exc:
        raise MinicnnError(f"zip entry {quote(entry.name)} is damaged ({_first(exc)})") from None
    return bytes(out)


def _first(exc) -> str:
    return quote(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 120)
