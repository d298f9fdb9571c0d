"""minicnn's own model file: one self-describing HDF5 file per network.

Layout (format "minicnn", version 1)::

    /                     attrs: format="minicnn", format_version=1, dtype="float32",
                                 layers=JSON [{"kind", "name", "config"}, ...] in order,
                                 meta=JSON (input_shape, class_names, preprocess, provenance, ...)
    /params/<layer name>/weight   conv (O, C, kh, kw) or dense (out, in), engine layout
    /params/<layer name>/bias     (O,) or (out,)

The architecture is stored as each layer's ``kind`` and ``config()``, so reading rebuilds it as
``LAYER_KINDS[kind](**config, name=name)``; parameters are stored in their own dtype, so a save and
load round trip is exact, bit for bit. Saving writes a temporary file beside the target and renames
it (minicnn.io.atomic), so an interrupted save never leaves a broken file at the target path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.io.atomic import atomic_path
from minicnn.io.h5common import assign, attr_str

FORMAT = "minicnn"
FORMAT_VERSION = 1


def _json_default(value):
    """Let numpy scalars and arrays (accuracies, seeds, shapes) appear in ``net.meta``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"net.meta value of type {type(value).__name__} cannot be saved")


def save(net, path) -> Path:
    """Write ``net`` (a Sequential) to ``path`` in minicnn's HDF5 format, atomically.

    Everything needed to use the network is stored: the layers (kind, hyper-parameters, name), the
    parameters in the network's dtype (float32 by default) and ``net.meta`` as JSON. Parameters on
    the GPU are copied to the host. Returns the path written.
    """
    import h5py

    from minicnn.network import Sequential

    if not isinstance(net, Sequential):
        raise MinicnnError(f"save expects a minicnn Sequential network, got {type(net).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise MinicnnError(f"cannot save to {path}: folder {path.parent} does not exist")
    layers = [{"kind": la.kind, "name": la.name, "config": la.config()} for la in net.layers]
    try:
        meta = json.dumps(net.meta, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise MinicnnError(f"cannot save net.meta as JSON: {exc}") from None
    with atomic_path(path, suffix=".tmp") as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["dtype"] = str(net.dtype)
            f.attrs["layers"] = json.dumps(layers)
            f.attrs["meta"] = meta
            params = f.create_group("params")
            for layer, key, value in net.parameters():
                params.create_dataset(f"{layer.name}/{key}", data=to_numpy(value))
    return path


def read_native(f):
    """Rebuild the Sequential stored in the open h5py File ``f`` (see the module docstring).

    Raises MinicnnError (without the file name; the caller adds it) on a newer format version,
    an unknown layer kind, a bad configuration, or a missing or misshapen parameter.
    """
    from minicnn.layers import LAYER_KINDS
    from minicnn.network import Sequential

    version = int(f.attrs.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise MinicnnError(f"minicnn format version {version} is not supported (expected {FORMAT_VERSION})")
    try:
        specs = json.loads(attr_str(f, "layers", "null"))
        meta = json.loads(attr_str(f, "meta", "{}"))
    except json.JSONDecodeError as exc:
        raise MinicnnError(f"damaged 'layers' or 'meta' attribute ({exc})") from None
    if not isinstance(specs, list) or not specs:
        raise MinicnnError("expected a non-empty 'layers' list in the file attributes")
    dtype = np.dtype(attr_str(f, "dtype", "float32"))
    layers = []
    for spec in specs:
        kind, name = spec.get("kind"), spec.get("name")
        if kind not in LAYER_KINDS:
            raise MinicnnError(
                f"layer {name!r}: unknown kind {kind!r} (expected one of {', '.join(LAYER_KINDS)})"
            )
        try:
            layer = LAYER_KINDS[kind](**spec.get("config", {}), name=name)
        except TypeError as exc:
            raise MinicnnError(f"layer {name!r} ({kind}): bad configuration ({exc})") from None
        if layer.has_params:
            group = f.get(f"params/{name}")
            if group is None:
                raise MinicnnError(f"layer {name!r}: parameters missing (expected params/{name})")
            assign(layer, {key: group[key][()] for key in group}, dtype=dtype)
        layers.append(layer)
    return Sequential(layers, meta=meta, dtype=dtype)
