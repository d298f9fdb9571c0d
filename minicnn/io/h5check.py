"""What an HDF5 model file may contain, checked before a single weight byte is read.

A model file is untrusted input. HDF5 can make a dataset read bytes from *another* file (external
storage, external links, virtual datasets), run compression plugins (user-defined filters), or
declare a shape far larger than the file (a 1 KB file that asks for 37 GB). None of these is ever
needed by a weights file, so:

``check_structure(f)`` walks every link of the open file (H5Lvisit, one pass, no data read) and
refuses external and soft links, external storage, virtual datasets and filters other than HDF5's
built-in ones (deflate, shuffle, Fletcher-32, szip, n-bit, scale-offset);

``read_array(ds, shape, what)`` reads one dataset only after checking that it is a dataset of a
floating dtype, that its declared shape is the one the architecture needs, that its size is under
``MAX_ARRAY_BYTES``, and that compressed chunks cannot inflate beyond what real data compresses to.

Messages carry no file name; ``minicnn.io.loader`` adds it.
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError

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


def _check_dataset(name: str, ds) -> None:
    """Refuse a dataset whose bytes would come from elsewhere or through a plugin."""
    import h5py

    plist = ds.id.get_create_plist()
    if plist.get_external_count() > 0:
        raise MinicnnError(f"dataset {name!r} is stored in another file (external storage is refused)")
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        raise MinicnnError(f"dataset {name!r} is a virtual dataset (reads other files; refused)")
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if code not in BUILTIN_FILTERS:
            raise MinicnnError(
                f"dataset {name!r} needs HDF5 filter {code} (a plugin; only built-in filters "
                f"{', '.join(BUILTIN_FILTERS.values())} are allowed)"
            )


def check_structure(f) -> None:
    """Walk every link of the open h5py File ``f``; MinicnnError on anything a weights file never
    needs: external links, soft links, user-defined links, external storage, virtual datasets,
    plugin filters, or more than MAX_LINKS links. Reads no dataset bytes; follows no link."""
    import h5py

    count = 0

    def visit(name, link):
        # an exception raised inside the H5Lvisit callback comes out as a SystemError, so the
        # first problem is returned (a non-None value stops the walk) and raised afterwards
        nonlocal count
        count += 1
        if count > MAX_LINKS:
            return f"more than {MAX_LINKS} objects (not a model file)"
        if isinstance(link, h5py.ExternalLink):
            return f"{name!r} is a link into file {link.filename!r} (external links are refused)"
        if isinstance(link, h5py.SoftLink):
            return f"{name!r} is a soft link to {link.path!r} (soft links are refused)"
        if not isinstance(link, h5py.HardLink):
            return f"{name!r} is a user-defined link (refused)"
        # the object's class is known without opening it; only datasets need their plist
        if f.get(name, getclass=True) is h5py.Dataset:
            try:
                _check_dataset(name, f[name])
            except MinicnnError as exc:
                return str(exc)
        return None

    problem = f.visititems_links(visit)
    if problem is not None:
        raise MinicnnError(problem)


def _storage_can_hold(ds, nbytes: int, what: str) -> None:
    """MinicnnError when compressed chunks would inflate beyond what real data compresses to.

    zlib cannot compress by more than MAX_COMPRESSION_RATIO, so a filtered dataset declaring more
    than that many times its stored bytes is a decompression bomb, or has lost chunks. Unfiltered
    data is read as stored: its declared size is bounded by the caller, and parts the file never
    wrote read as HDF5's fill value, as in any HDF5 reader.
    """
    import h5py

    plist = ds.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.CHUNKED and plist.get_nfilters() > 0:
        stored = ds.id.get_storage_size()
        if nbytes > stored * MAX_COMPRESSION_RATIO:
            raise MinicnnError(
                f"{what}: {nbytes} bytes declared but only {stored} stored (missing chunks or a bomb)"
            )


def check_declared(ds, shape, what: str) -> None:
    """Check a dataset's kind, dtype, shape and size without reading it (see ``read_array``)."""
    import h5py

    if not isinstance(ds, h5py.Dataset):
        raise MinicnnError(f"{what}: expected a dataset, found a {type(ds).__name__}")
    dtype = ds.dtype
    if dtype.kind != "f" or dtype.itemsize not in _FLOAT_SIZES or dtype.fields or dtype.subdtype:
        raise MinicnnError(f"{what}: expected floating-point weights, the file declares dtype {dtype}")
    if shape is not None and tuple(ds.shape) != tuple(shape):
        raise MinicnnError(f"{what} should have shape {tuple(shape)}, found {tuple(ds.shape)}")
    nbytes = int(np.prod(ds.shape, dtype=object)) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise MinicnnError(f"{what}: declares {nbytes} bytes, over the {MAX_ARRAY_BYTES}-byte limit")
    _storage_can_hold(ds, nbytes, what)


def read_array(ds, shape, what: str) -> np.ndarray:
    """The array stored in h5py Dataset ``ds``, read only after ``check_declared``.

    shape: the shape the architecture needs (None: any, for the Keras layouts whose architecture
    is inferred from the shapes; the size bound still applies). what: names the array in errors.
    Returns a floating ndarray of that shape; MinicnnError (one line) otherwise.
    """
    check_declared(ds, shape, what)
    return ds[()]
