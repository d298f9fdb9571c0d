"""safetensors files of torchvision's or timm's VGG, checked by the ``safetensors`` package and by us.

A safetensors file is an 8-byte little-endian header length n, n bytes of JSON naming every tensor
(dtype, shape, [begin, end) byte offsets into the data that follows), then the raw data. It holds
no code, so reading it is safe by construction; what is left to check is that the header's numbers
agree with the file (done here before the package maps the file, so a damaged header is one line)
and that the names and shapes are a VGG's (minicnn/io/torchvision.py, before any tensor is read).
The package (``safe_open(..., framework="numpy")``) then parses the same header by its own rules;
the two readings must agree, and each tensor's bytes are read once, straight into its array.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError, quote

# safetensors dtype names -> NumPy dtypes (little-endian, as the format stores them); NumPy has no
# bfloat16, so BF16 files are refused
_NUMPY_DTYPE = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
                "I8": "i1", "U8": "u1", "BOOL": "?"}  # fmt: skip
MAX_HEADER = 100 * 1024 * 1024  # the package's own limit on the JSON header
MAX_NDIM = 32
# the most elements a shape may describe with its zeros read as 1: an empty tensor of shape
# (0, 2^62, 2^62) holds nothing, but NumPy cannot make it
MAX_SHAPE = 2**48


def sniff(head: bytes, size: int) -> bool:
    """True when the first bytes are a safetensors header: a length that fits the file, then '{'."""
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= min(size - 8, MAX_HEADER) and head[8:9] == b"{"


def read_header(path) -> dict:
    """The JSON header's tensors: name -> {"dtype", "shape", "data_offsets", "file_span"}, with every
    tensor's byte span checked against its dtype, shape and the file; file_span is (begin, end) in
    the file. Refused: a header longer than the file or MAX_HEADER (checked before it is read), a
    name given twice (JSON parsers differ on which one counts), and two tensors sharing a byte."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise MinicnnError("truncated safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, MAX_HEADER):
            raise MinicnnError(f"the safetensors header declares {n} bytes, the file holds {size - 8}")
        raw = f.read(n)
    try:
        header = json.loads(raw, object_pairs_hook=_unique_keys)
    except MinicnnError:
        raise
    except (ValueError, RecursionError) as exc:  # also an int of more digits than int() converts
        raise MinicnnError(f"damaged safetensors header ({quote(str(exc).splitlines()[0], 120)})") from None
    if not isinstance(header, dict):
        raise MinicnnError("damaged safetensors header (not a JSON object)")
    data_size = size - 8 - n
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    for name, spec in tensors.items():
        dtype, shape, (begin, end) = _entry(name, spec)
        need = math.prod(shape) * np.dtype(_NUMPY_DTYPE[dtype]).itemsize
        if end - begin != need or begin < 0:
            raise MinicnnError(
                f"tensor {quote(name)}: {end - begin} bytes declared for shape {tuple(shape)} ({dtype})"
            )
        if end > data_size:
            raise MinicnnError(
                f"truncated file: tensor {quote(name)} ends at byte {end}, the data holds {data_size}"
            )
        spec["file_span"] = (8 + n + begin, 8 + n + end)  # where its bytes lie in the file
    spans = sorted((spec["data_offsets"][0], spec["data_offsets"][1], name) for name, spec in tensors.items())
    for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
        if begin < end:
            raise MinicnnError(f"tensors {quote(first)} and {quote(second)} share bytes")
    return tensors


def _unique_keys(pairs) -> dict:
    """json's object hook: a dict, refusing a key given twice."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise MinicnnError(f"the safetensors header names {quote(key)} twice")
        out[key] = value
    return out


def _entry(name, spec) -> tuple[str, list, tuple]:
    """(dtype, shape, (begin, end)) of one header entry, each of the type the format requires."""
    try:
        dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    except (KeyError, TypeError):
        raise MinicnnError(f"tensor {quote(name)}: damaged header entry") from None
    if not isinstance(dtype, str) or dtype not in _NUMPY_DTYPE:
        raise MinicnnError(
            f"tensor {quote(name)} has dtype {quote(dtype)}; minicnn reads {', '.join(_NUMPY_DTYPE)}"
        )
    counts = (
        isinstance(shape, list) and len(shape) <= MAX_NDIM and isinstance(offsets, list) and len(offsets) == 2
    )
    if (
        not counts
        or not all(type(v) is int and v >= 0 for v in (*shape, *offsets))
        or math.prod(max(d, 1) for d in shape) > MAX_SHAPE
    ):
        raise MinicnnError(
            f"tensor {quote(name)}: shape and data_offsets must be lists of non-negative ints "
            f"(at most {MAX_NDIM} dimensions, {MAX_SHAPE} elements)"
        )
    return dtype, shape, tuple(offsets)


def read_safetensors(path):
    """Load a VGG from a safetensors file (torchvision or timm names; see minicnn/io/torchvision.py),
    or a torchvision ResNet (minicnn/io/torchvision_resnet.py).

    Returns a float32 Sequential (a Graph for a ResNet) with meta preprocess "torch" and, for 1000
    classes, the ImageNet class names. MinicnnError on a damaged file or another state dict.
    """
    try:
        from safetensors import safe_open
    except ImportError:
        raise MinicnnError(
            "reading safetensors files needs the safetensors package: pip install safetensors"
        ) from None

    from minicnn.io.torchvision import _check_vgg, build_vgg
    from minicnn.io.torchvision_resnet import build_resnet, looks_like_resnet

    header = read_header(path)
    build = build_resnet if looks_like_resnet(header) else build_vgg  # ResNet: io/torchvision_resnet.py
    if build is build_vgg:
        _check_vgg(header)
    try:
        with safe_open(str(path), framework="numpy") as f:  # the package's own header checks
            _agree(header, {name: f.get_slice(name) for name in f.keys()})
    except MinicnnError:
        raise
    except Exception as exc:  # the package's SafetensorError
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MinicnnError(f"cannot read the safetensors file ({quote(text, 160)})") from None
    shapes = {name: tuple(spec["shape"]) for name, spec in header.items()}
    with open(path, "rb") as f:
        return build(shapes, lambda name: _read_tensor(f, name, header[name]), "safetensors")


# Why the bytes are not read through the package: it memory-maps the whole file, and every page a
# read touches is one more page fault and stays resident until the handle closes. Through one
# handle VGG16 peaked at 2.0x its weights and took 1.56x the time of safetensors.numpy.load_file
# (piece by piece through fresh handles); one plain read per tensor into its final array, at the
# offsets both header parsers agree on, peaks at 1.0x (benchmarks/load_torch_files.py).


def _agree(header: dict, package: dict) -> None:
    """The package's view of the file (name -> PySafeSlice) must be ours: same names, dtypes, shapes."""
    if set(package) != set(header):
        extra = sorted(set(package) ^ set(header))
        raise MinicnnError(f"the safetensors header is ambiguous (tensor {quote(extra[0])} read differently)")
    for name, spec in header.items():
        found = (package[name].get_dtype(), tuple(package[name].get_shape()))
        if found != (spec["dtype"], tuple(spec["shape"])):
            raise MinicnnError(
                f"tensor {quote(name)}: the header is ambiguous ({quote(found)} against {quote(spec)})"
            )


def _read_tensor(f, name: str, spec: dict) -> np.ndarray:
    """Tensor ``name`` as a new writable array, read from the open file ``f`` at the byte span
    ``spec["file_span"]`` that read_header checked against the dtype, the shape and the file size."""
    out = np.empty(tuple(spec["shape"]), dtype=_NUMPY_DTYPE[spec["dtype"]])
    begin, end = spec["file_span"]
    f.seek(begin)
    if out.nbytes and f.readinto(memoryview(out).cast("B")) != end - begin:
        raise MinicnnError(f"truncated file: tensor {quote(name)} is cut short")
    return out
