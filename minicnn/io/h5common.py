"""Helpers shared by the HDF5 readers: attribute decoding and checked parameter assignment.

Keras 2 stored attribute strings as ``bytes`` (or arrays of bytes), h5py 3 and Keras 3 as ``str``;
every reader goes through ``attr_str`` / ``attr_list`` so that both spellings work.
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError


def decode(value) -> str:
    """One HDF5 attribute value (bytes, numpy bytes or str) -> str."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8")
    return str(value)


def attr_str(obj, key: str, default=None) -> str | None:
    """A scalar string attribute of an h5py object, decoded; ``default`` when it is missing."""
    if key not in obj.attrs:
        return default
    value = obj.attrs[key]
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value.tolist()
    return decode(value)


def read_attrs(obj, limit: int) -> dict:
    """All attributes of an h5py object, by the low-level API (H5Aread), as {name: value}.

    Scalars come back as Python values (byte strings, fixed or variable length, decoded as UTF-8),
    arrays as arrays. limit: the most bytes one attribute may declare (the file's size: an
    attribute's value is stored whole in the file). About half the time of reading them through
    ``obj.attrs``, which matters for small files.
    """
    import h5py

    out = {}
    for i in range(h5py.h5a.get_num_attrs(obj.id)):
        aid = h5py.h5a.open(obj.id, index=i)
        name = decode(aid.name)
        if int(np.prod(aid.shape, dtype=object)) * aid.dtype.itemsize > limit:
            raise MinicnnError(f"attribute {name!r} declares more bytes than the file holds")
        value = np.empty(aid.shape, dtype=aid.dtype)
        aid.read(value)
        if value.ndim == 0:
            value = value[()]
            value = decode(value) if isinstance(value, (bytes, np.bytes_)) else value
        out[name] = value
    return out


def attr_list(obj, key: str) -> list[str] | None:
    """A list-of-strings attribute, decoded; also reads one split into ``key0``, ``key1``, ...

    Keras 2 splits attributes larger than HDF5's 64 KiB object-header limit into numbered chunks
    (``layer_names0``, ``layer_names1``, ...) and concatenates them when reading; so do we.
    None when neither form is present.
    """
    if key in obj.attrs:
        chunks = [obj.attrs[key]]
    elif f"{key}0" in obj.attrs:
        chunks, i = [], 0
        while f"{key}{i}" in obj.attrs:
            chunks.append(obj.attrs[f"{key}{i}"])
            i += 1
    else:
        return None
    out = []
    for chunk in chunks:
        values = np.atleast_1d(np.asarray(chunk, dtype=object)).ravel()
        out.extend(decode(v) for v in values)
    return out


def assign(layer, values: dict, dtype=np.float32) -> None:
    """Set ``layer``'s parameters from ``values`` after checking every shape.

    values: {"weight": array, "bias": array} already in engine layout (OIHW or (out, in)).
    Raises MinicnnError naming the layer, the parameter, the expected and the found shape, or
    when a value is not floating point or not finite (NaN/Inf weights make every score NaN).
    """
    shapes = layer.param_shapes()
    if set(values) != set(shapes):
        raise MinicnnError(
            f"layer {layer.name!r}: expected parameters {sorted(shapes)}, found {sorted(values)}"
        )
    for key, shape in shapes.items():
        value = np.asarray(values[key])
        if tuple(value.shape) != tuple(shape):
            raise MinicnnError(
                f"layer {layer.name!r} ({layer.kind}): {key} should have shape {tuple(shape)}, "
                f"found {tuple(value.shape)}"
            )
        if not np.issubdtype(value.dtype, np.floating):
            raise MinicnnError(f"layer {layer.name!r}: {key} should be floating point, found {value.dtype}")
        # min and max carry any NaN and reach any infinity without a temporary the size of the
        # weights (np.isfinite(value).all() would allocate 100 MB for VGG16's fc1)
        if value.size and not (np.isfinite(value.min()) and np.isfinite(value.max())):
            bad = int(value.size - np.count_nonzero(np.isfinite(value)))
            raise MinicnnError(f"layer {layer.name!r}: {key} holds {bad} NaN or infinite values")
    for key in shapes:
        setattr(layer, key, np.ascontiguousarray(values[key], dtype=dtype))
