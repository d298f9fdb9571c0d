"""What an HDF5 model file may contain, checked before a single weight byte is read.

A model file is untrusted input. HDF5 can make a dataset read bytes from *another* file (external
storage, external links, virtual datasets), run compression plugins (user-defined filters), or
declare a shape far larger than the file (a 1 KB file that asks for 37 GB). None of these is ever
needed by a weights file, so:

``open_h5(path, name)`` opens a file read-only with h5py, one line naming the file if it is not
HDF5 or libhdf5 cannot open it;

``check_structure(f)`` walks every link of the open file (H5Lvisit, one pass, no data read) and
refuses external and soft links, external storage, virtual datasets and filters other than HDF5's
built-in ones (deflate, shuffle, Fletcher-32, szip, n-bit, scale-offset);

``read_array(ds, shape, what)`` reads one dataset only after checking that it is a dataset of a
floating dtype, that its declared shape is the one the architecture needs, that its size is under
``MAX_ARRAY_BYTES``, and that compressed chunks cannot inflate beyond what real data compresses to.

Messages carry no file name (but open_h5's); ``minicnn.io.loader`` adds it.
"""

from __future__ import annotations

import contextlib
import math
import os

import numpy as np

from minicnn.errors import MinicnnError, quote

# 2 GiB: five times VGG16's largest array (fc1, 25088 x 4096 float32 = 411 MB)
MAX_ARRAY_BYTES = 2 * 2**30
# 100,000 links: a Keras model with optimizer state has a few hundred
MAX_LINKS = 100_000
# HDF5's own filters (H5Zpublic.h): deflate, shuffle, fletcher32, szip, nbit, scaleoffset;
# every id from 256 up is a plugin that libhdf5 would load from disk
BUILTIN_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit", 6: "scaleoffset"}
# zlib's largest compression ratio is 1032:1 (RFC 1950/1951, a run of one byte); with headers
# and the shuffle filter a ratio above 1100 cannot come from real data
MAX_COMPRESSION_RATIO = 1100
_FLOAT_SIZES = (2, 4, 8)


@contextlib.contextmanager
def open_h5(file, name=None):
    """Yield the h5py File read from ``file`` (a path, or a binary file object such as
    ``ModelFile.reader()``), closed on exit; MinicnnError naming ``name`` (default: file) when it
    is not an HDF5 file or libhdf5 cannot open it."""
    import h5py

    name = name or file
    try:
        f = h5py.File(file, "r")
    except Exception as exc:  # noqa: BLE001 - OSError from libhdf5, or worse from a damaged superblock
        if not _has_signature(file):  # asked only after a failure, so that a good file is read once
            from minicnn.io.formats import model_files

            # the other formats were tried first (io/foreign.py): none matched either
            raise MinicnnError(
                f"{name}: not an HDF5 file nor another model file (expected {model_files()})"
            ) from None
        text = str(exc).splitlines()[0] if str(exc) else ""
        reason = f"{type(exc).__name__}: {quote(text, 160)}" if text else type(exc).__name__
        raise MinicnnError(f"{name}: cannot open HDF5 file, truncated or corrupt ({reason})") from None
    try:
        yield f
    finally:
        f.close()


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _has_signature(file) -> bool:
    """True when the HDF5 signature is where the format puts the superblock: at byte 0, 512, 1024,
    2048, ... (after a user block of that size)."""
    opened = open(file, "rb") if isinstance(file, (str, bytes, os.PathLike)) else contextlib.nullcontext(file)
    with opened as f:
        offset = 0
        while True:
            f.seek(offset)
            head = f.read(8)
            if len(head) < 8:
                return False
            if head == HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2


def _text(name) -> str:
    """An HDF5 path (bytes from the low-level API) as text for messages."""
    return name.decode("utf-8", "backslashreplace") if isinstance(name, bytes) else str(name)


def _check_dataset(name: str, dsid) -> None:
    """Refuse a dataset (a low-level DatasetID) whose bytes would come from elsewhere or through a
    plugin."""
    import h5py

    plist = dsid.get_create_plist()
    if plist.get_external_count() > 0:
        raise MinicnnError(f"dataset {quote(name)} is stored in another file (external storage is refused)")
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        raise MinicnnError(f"dataset {quote(name)} is a virtual dataset (reads other files; refused)")
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if code not in BUILTIN_FILTERS:
            raise MinicnnError(
                f"dataset {quote(name)} needs HDF5 filter {code} (a plugin; only built-in filters "
                f"{', '.join(BUILTIN_FILTERS.values())} are allowed)"
            )


def check_structure(f) -> dict:
    """Walk every link of the open h5py File ``f``; MinicnnError on anything a weights file never
    needs: external links, soft links, user-defined links, external storage, virtual datasets,
    plugin filters, or more than MAX_LINKS links. Reads no dataset bytes; follows no link.

    Returns {path: h5py.h5d.DatasetID} of every dataset (paths without the leading "/"), already
    open, so that a reader need not look them up again. Two walks of the low-level API: H5Lvisit
    with link info (the kind of every link, without opening anything), then H5Ovisit with object
    info (which objects are datasets); the high-level API costs ten times more per link, which for
    a small model file would be most of the time ``mc.load`` takes.
    """
    from h5py import h5d, h5l, h5o

    fid = f.id
    count = 0

    def visit_link(name, info):
        # an exception raised inside the H5Lvisit callback comes out as a SystemError, so the
        # first problem is returned (a non-None value stops the walk) and raised afterwards
        nonlocal count
        count += 1
        if count > MAX_LINKS:
            return f"more than {MAX_LINKS} links (not a model file)"
        if info.type == h5l.TYPE_HARD:
            return None
        if info.type == h5l.TYPE_EXTERNAL:
            target = _text(fid.links.get_val(name)[0])
            return f"{quote(_text(name))} is a link into file {quote(target)} (external links are refused)"
        if info.type == h5l.TYPE_SOFT:
            target = _text(fid.links.get_val(name))
            return f"{quote(_text(name))} is a soft link to {quote(target)} (soft links are refused)"
        return f"{quote(_text(name))} is a user-defined link (refused)"

    problem = fid.links.visit(visit_link, info=True)
    if problem is not None:
        raise MinicnnError(problem)
    names = []
    h5o.visit(
        fid, lambda name, info: names.append(name) if info.type == h5o.TYPE_DATASET else None, info=True
    )
    datasets = {}
    for name in names:
        dsid = h5d.open(fid, name)
        text = _text(name)
        _check_dataset(text, dsid)
        datasets[text] = dsid
    return datasets


# filters that change the number of stored bytes (shuffle and Fletcher-32 do not)
_SIZE_CHANGING = {1, 4, 5, 6}


def check_storage(dsid, nbytes: int, what: str) -> None:
    """MinicnnError when compressed chunks would inflate beyond what real data compresses to.

    zlib cannot compress by more than MAX_COMPRESSION_RATIO, so a compressed dataset declaring more
    than that many times its stored bytes is a decompression bomb, or has lost chunks. Data stored
    uncompressed is read as stored: its declared size is bounded by the caller, and parts the file
    never wrote read as HDF5's fill value, as in any HDF5 reader.
    """
    stored = dsid.get_storage_size()
    if nbytes <= stored * MAX_COMPRESSION_RATIO:
        return  # the common case, decided without reading the dataset's creation property list
    plist = dsid.get_create_plist()
    if any(plist.get_filter(i)[0] in _SIZE_CHANGING for i in range(plist.get_nfilters())):
        raise MinicnnError(
            f"{what}: {nbytes} bytes declared but only {stored} stored (missing chunks or a bomb)"
        )


def _dataset_id(ds, what: str):
    """The low-level DatasetID of a Dataset (or the DatasetID itself); MinicnnError otherwise."""
    import h5py

    if isinstance(ds, h5py.Dataset):
        return ds.id
    if isinstance(ds, h5py.h5d.DatasetID):
        return ds
    raise MinicnnError(f"{what}: expected a dataset, found a {type(ds).__name__}")


def check_declared(ds, shape, what: str) -> tuple:
    """Check a dataset's kind, dtype, shape and size without reading it (see ``read_array``).

    Returns the declared shape (a tuple of ints), so that a reader need not ask libhdf5 again."""
    dsid = _dataset_id(ds, what)
    dtype, found = dsid.dtype, dsid.shape
    if dtype.kind != "f" or dtype.itemsize not in _FLOAT_SIZES or dtype.fields or dtype.subdtype:
        raise MinicnnError(f"{what}: expected floating-point weights, the file declares dtype {dtype}")
    if shape is not None and found != tuple(shape):
        raise MinicnnError(f"{what} should have shape {tuple(shape)}, found {found}")
    nbytes = math.prod(found) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise MinicnnError(f"{what}: declares {nbytes} bytes, over the {MAX_ARRAY_BYTES}-byte limit")
    check_storage(dsid, nbytes, what)
    return found


def read_array(ds, shape, what: str) -> np.ndarray:
    """The array stored in dataset ``ds`` (an h5py Dataset or DatasetID), read only after
    ``check_declared``.

    shape: the shape the architecture needs (None: any, for the Keras layouts whose architecture
    is inferred from the shapes; the size bound still applies). what: names the array in errors.
    Returns a floating ndarray of that shape, in the file's dtype; MinicnnError (one line)
    otherwise. libhdf5 errors (a failed Fletcher-32 check, missing bytes) propagate as OSError.
    """
    import h5py

    found = check_declared(ds, shape, what)
    dsid = _dataset_id(ds, what)
    out = np.empty(found, dtype=dsid.dtype)
    if out.size:
        dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
    return out
