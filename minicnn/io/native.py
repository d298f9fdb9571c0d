"""minicnn's own model file: one self-describing HDF5 file per network.

Layout (format "minicnn", version 2)::

    /                     attrs: format="minicnn", format_version=2, dtype="float32",
                                 layers=JSON [{"kind", "name", "config"}, ...] in order
                                        (a Graph's entries also carry "inputs": [name, ...]),
                                 meta=JSON (input_shape, class_names, preprocess, provenance, ...),
                                 arrays=JSON {"params/<layer>/<key>": {"shape", "dtype", "sha256"}},
                                 header_sha256=SHA-256 of the five attributes above
    /params/<layer name>/weight   conv (O, C, kh, kw) or dense (out, in), engine layout
    /params/<layer name>/bias     (O,) or (out,)
    /params_escaped/<name>/...    the same for a layer whose name holds "/" (ONNX names such as
                                  "/features/features.0/Conv"), with "%" and "/" written %25, %2F

A Graph (residual blocks) is stored as its layers in run order, each entry with the names of the
nodes it reads ("input" is the network's input); the last entry is the output. A chain's entries
have no "inputs", so a chain's file is the same as before graphs existed. Reading a file with
inputs builds the Graph through its constructor, which refuses a cycle, a name that is no node, an
unused output and (when meta holds input_shape) shapes that do not add, naming the node.

The architecture is stored as each layer's ``kind`` and ``config()``, so reading rebuilds it as
``LAYER_KINDS[kind](**config, name=name)``; parameters are stored in their own dtype, so a save and
load round trip is exact, bit for bit.

Corruption is detected, never loaded: every array carries the SHA-256 of its bytes (FIPS 180-4) in
the ``arrays`` attribute, which the header checksum covers together with the architecture and the
metadata. Arrays are stored contiguously, without HDF5's per-chunk Fletcher-32: the SHA-256 already
covers every byte of every array, and a second checksum per chunk would cost a third of a small
model's load time while catching nothing the SHA-256 misses. Version 2 files written earlier with
Fletcher-32 chunks are verified by both. Attributes are fixed-length byte strings in the object
header (no global heap, the structure whose corruption made libhdf5 loop or crash in version 1
files) and the file uses the latest HDF5 file-format version. Version 1 files (no checksums,
variable-length strings) still load, with a ``UncheckedFileWarning``.

Saving builds the whole file in memory and writes its bytes through a temporary file beside the
target that is renamed at the end (minicnn.io.atomic): libhdf5 never writes to the disk, so a full
disk is one OSError from ``write`` (reported as one line) and an interrupted save never leaves a
broken file at the target path.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError, quote
from minicnn.io.atomic import atomic_path
from minicnn.io.h5check import check_declared
from minicnn.io.h5common import assign, read_attrs

FORMAT = "minicnn"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# the attributes the header checksum covers, in this order
HEADER_ATTRS = ("format", "format_version", "dtype", "layers", "meta", "arrays")


class UncheckedFileWarning(UserWarning):
    """A minicnn file written before checksums existed (version 1): it loads, unverified."""


def _json_default(value):
    """Let numpy scalars and arrays (accuracies, seeds, shapes) appear in ``net.meta``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"net.meta value of type {type(value).__name__} cannot be saved")


def array_sha256(a: np.ndarray) -> str:
    """SHA-256 (hex) of an array's bytes in C order, little-endian: the same on every machine."""
    a = np.ascontiguousarray(a)
    return hashlib.sha256(a.astype(a.dtype.newbyteorder("<"), copy=False).data).hexdigest()


def header_sha256(values: dict) -> str:
    """SHA-256 (hex) over the header attributes (HEADER_ATTRS, as strings, one per line)."""
    text = "\n".join(f"{key}={values[key]}" for key in HEADER_ATTRS)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _fixed(text: str) -> np.bytes_:
    """A fixed-length byte-string attribute value (stored in the object header, not the heap)."""
    return np.bytes_(text.encode("utf-8"))


def param_path(layer_name: str, key: str) -> str:
    """The dataset path of one parameter. HDF5 reads "/" as a group separator, so a name holding
    "/" is percent-escaped ("%" and "/") under its own group: the path of every other name is the
    one files have always used, and no escaped name can meet an unescaped one."""
    if "/" not in layer_name:
        return f"params/{layer_name}/{key}"
    return f"params_escaped/{layer_name.replace('%', '%25').replace('/', '%2F')}/{key}"


def _layer_spec(net, layer) -> dict:
    """One entry of the "layers" attribute; a graph's entries name the nodes each layer reads."""
    spec = {"kind": layer.kind, "name": layer.name, "config": layer.config()}
    if not net.is_chain:
        spec["inputs"] = list(net.inputs[layer.name])
    return spec


def to_bytes(net) -> bytes:
    """The whole minicnn file for ``net`` as bytes (built in memory by libhdf5)."""
    import h5py

    layers = json.dumps([_layer_spec(net, la) for la in net.layers])
    try:
        meta = json.dumps(net.meta, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise MinicnnError(f"cannot save net.meta as JSON: {exc}") from None
    params = [(param_path(layer.name, key), to_numpy(value)) for layer, key, value in net.parameters()]
    arrays = {
        name: {"shape": list(a.shape), "dtype": a.dtype.str, "sha256": array_sha256(a)} for name, a in params
    }
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "dtype": str(net.dtype),
        "layers": layers,
        "meta": meta,
        "arrays": json.dumps(arrays),
    }
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", libver="latest") as f:
        for key, value in header.items():
            if key == "format_version":
                f.attrs[key] = np.int64(FORMAT_VERSION)
            else:
                f.attrs[key] = _fixed(value)
        f.attrs["header_sha256"] = _fixed(header_sha256(header))
        for name, a in params:
            f.create_dataset(name, data=a)  # contiguous: one plain read, checked by its SHA-256
    return buffer.getvalue()


def save(net, path) -> Path:
    """Write ``net`` (a Sequential or a Graph) to ``path`` in minicnn's HDF5 format, atomically.

    Everything needed to use the network is stored: the layers (kind, hyper-parameters, name), the
    parameters in the network's dtype (float32 by default) with a SHA-256 each, and ``net.meta``
    as JSON. Parameters on the GPU are copied to the host. Returns the path written; a full disk
    or an unwritable folder is one MinicnnError and leaves no file behind.
    """
    from minicnn.network import Sequential

    if not isinstance(net, Sequential):
        raise MinicnnError(f"save expects a minicnn Sequential network, got {type(net).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise MinicnnError(f"cannot save to {path}: folder {path.parent} does not exist")
    data = to_bytes(net)
    try:
        with atomic_path(path, suffix=".tmp") as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        raise MinicnnError(f"cannot save to {path}: {exc.strerror or exc}") from None
    return path


def _verify_header(attrs: dict) -> dict:
    """The ``arrays`` manifest of a version 2 file after checking the header checksum."""
    values = {key: attrs.get(key) for key in HEADER_ATTRS}
    missing = [key for key, value in values.items() if value is None]
    if missing or attrs.get("header_sha256") is None:
        raise MinicnnError(f"damaged header: attribute {(missing or ['header_sha256'])[0]!r} is missing")
    if header_sha256({k: str(v) for k, v in values.items()}) != attrs["header_sha256"]:
        raise MinicnnError("damaged header: its SHA-256 does not match (the file is corrupt)")
    try:
        arrays = json.loads(values["arrays"])
    except (json.JSONDecodeError, TypeError) as exc:
        raise MinicnnError(f"damaged 'arrays' attribute ({quote(str(exc))})") from None
    if not isinstance(arrays, dict) or not all(isinstance(v, dict) for v in arrays.values()):
        raise MinicnnError("damaged 'arrays' attribute (expected a JSON object of objects)")
    return arrays


def _read_params(datasets: dict, layer, manifest: dict | None) -> dict:
    """{"weight": array, "bias": array} of ``layer``, each checked before and after reading.

    datasets: {path: DatasetID} from minicnn.io.h5check.check_structure.
    """
    import h5py

    prefix = param_path(layer.name, "")
    found = sorted(name[len(prefix) :] for name in datasets if name.startswith(prefix))
    shapes = layer.param_shapes()
    if not found:
        raise MinicnnError(
            f"layer {quote(layer.name)}: parameters missing (expected {quote(prefix[:-1])[1:-1]})"
        )
    if found != sorted(shapes):
        raise MinicnnError(
            f"layer {quote(layer.name)}: expected parameters {sorted(shapes)}, found {quote(str(found))}"
        )
    values = {}
    for key, shape in shapes.items():
        name, what = prefix + key, f"layer {quote(layer.name)}: {key}"
        dsid = datasets[name]
        found = check_declared(dsid, shape, what)
        if manifest is not None and manifest.get(name, {}).get("dtype") != dsid.dtype.str:
            raise MinicnnError(f"{what}: not in the file's checksum list with dtype {dsid.dtype.str}")
        values[key] = np.empty(found, dtype=dsid.dtype)
        try:
            if values[key].size:
                dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, values[key])
        except OSError as exc:  # bytes missing, or an older file's Fletcher-32 check of a chunk
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MinicnnError(f"{what}: its bytes cannot be read, damaged or truncated ({reason})") from None
        if manifest is not None and array_sha256(values[key]) != manifest[name].get("sha256"):
            raise MinicnnError(f"{what}: SHA-256 mismatch, the stored weights are corrupt")
    return values


def _graph_nodes(specs: list, layers: list):
    """[(layer, input names), ...] when the entries of "layers" carry "inputs" (a Graph), None for
    a chain (no entry has them); a MinicnnError naming the layer when only some do, or when an
    entry's inputs are not a non-empty list of names."""
    given = ["inputs" in spec for spec in specs]
    if not any(given):
        return None
    nodes = []
    for spec, layer in zip(specs, layers):
        reads = spec.get("inputs")
        if not isinstance(reads, list) or not reads or not all(isinstance(r, str) for r in reads):
            raise MinicnnError(
                f"layer {quote(layer.name)}: expected 'inputs' to be a non-empty list of node names, "
                f"found {quote(reads)}"
            )
        nodes.append((layer, tuple(reads)))
    return nodes


def read_native(f, datasets: dict | None = None):
    """Rebuild the Sequential (or Graph) stored in the open h5py File ``f`` (see the module docstring).

    datasets: {path: DatasetID} from ``minicnn.io.h5check.check_structure(f)`` (computed here when
    not given). Raises MinicnnError (without the file name; the caller adds it) on an unknown format
    version, a checksum mismatch, an unknown layer kind, a bad configuration, or a missing or
    misshapen parameter. A version 1 file (no checksums) loads with an UncheckedFileWarning.
    """
    from minicnn.io.h5check import check_structure
    from minicnn.layers import LAYER_KINDS
    from minicnn.network import Sequential

    if datasets is None:
        datasets = check_structure(f)
    attrs = read_attrs(f, limit=max(f.id.get_filesize(), 1))
    version = attrs.get("format_version", -1)
    if not isinstance(version, (int, np.integer)) or int(version) not in READABLE_VERSIONS:
        raise MinicnnError(
            f"minicnn format version {quote(str(version), 20)[1:-1]} is not supported (expected 1 or 2)"
        )
    if version == 1:
        warnings.warn(
            "minicnn format 1 file: it carries no checksums, so corruption cannot be detected "
            "(re-save it with mc.save to add them)",
            UncheckedFileWarning,
            stacklevel=2,
        )
    try:
        specs = json.loads(attrs.get("layers", "null"))
        meta = json.loads(attrs.get("meta", "{}"))
    except (json.JSONDecodeError, TypeError) as exc:
        raise MinicnnError(f"damaged 'layers' or 'meta' attribute ({quote(str(exc))})") from None
    if not isinstance(specs, list) or not specs:
        raise MinicnnError("expected a non-empty 'layers' list in the file attributes")
    if not isinstance(meta, dict):
        raise MinicnnError("expected a JSON object in the 'meta' attribute")
    dtype_name = attrs.get("dtype", "float32")
    if dtype_name not in ("float32", "float64"):
        raise MinicnnError(
            f"network dtype {quote(str(dtype_name), 20)} is not supported (expected float32 or float64)"
        )
    dtype = np.dtype(dtype_name)
    layers = []
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("config", {}), dict):
            raise MinicnnError("expected each entry of 'layers' to be {kind, name, config}")
        kind, name = spec.get("kind"), spec.get("name")
        if kind not in LAYER_KINDS or not isinstance(name, str):
            raise MinicnnError(
                f"layer {quote(str(name))}: unknown kind {quote(str(kind), 40)} "
                f"(expected one of {', '.join(LAYER_KINDS)})"
            )
        try:
            layer = LAYER_KINDS[kind](**spec.get("config", {}), name=name)
        except (TypeError, ValueError, OverflowError) as exc:
            raise MinicnnError(
                f"layer {quote(name)} ({kind}): bad configuration ({quote(str(exc))})"
            ) from None
        layers.append(layer)
    nodes = _graph_nodes(specs, layers)
    if nodes is not None:
        from minicnn.graph import Graph

        # the constructor checks the node list (cycles, names that are no node, shapes when
        # meta holds input_shape) before a weight byte is read; parameters are set in place later
        net = Graph(nodes, meta=meta, dtype=dtype)
    # the header is verified once the architecture parsed (so that a hand-edited file names its
    # first wrong layer) and before a single weight byte is read
    manifest = _verify_header(attrs) if version == 2 else None
    extra = sorted(set(datasets) - set(manifest)) if manifest is not None else []
    if extra:
        raise MinicnnError(
            f"dataset {quote(extra[0])} is not in the file's checksum list (the file was altered)"
        )
    for layer in layers:
        if layer.has_params:
            assign(layer, _read_params(datasets, layer, manifest), dtype=dtype)
    if manifest is not None and len(manifest) != sum(len(la.param_shapes()) for la in layers):
        raise MinicnnError("the checksum list does not match the layers (the file is corrupt)")
    if nodes is not None:
        return net
    return Sequential(layers, meta=meta, dtype=dtype)
