"""Other frameworks' files, told apart from their first bytes (never from the name):

    "torch-zip"      ``torch.save`` (torch >= 1.6): a zip archive holding ``<name>/data.pkl``
    "torch-legacy"   ``torch.save`` (torch < 1.6, e.g. torchvision's ``vgg16-397923af.pth``): a
                     pickle of the magic number 0x1950a86a20f9469cfc6c, protocol 2 or later
    "safetensors"    8-byte little-endian header length, then a JSON object
    "onnx"           an ONNX ModelProto: protobuf field 1 (ir_version, a small varint) first

``mc.load`` asks ``detect`` before its HDF5 path, on the file it opened once (minicnn.io.source),
and the reader gets that open file's ``library_path``. Every reader returns a float32 Sequential
and raises one-line MinicnnErrors; none reads anything outside the named file. None of them runs in
the guard's child process: why not is at the end of minicnn.io.guard's docstring.
"""

from __future__ import annotations

from pathlib import Path

from minicnn.errors import MinicnnError

FORMATS = ("torch-zip", "torch-legacy", "safetensors", "onnx")

# protobuf tags of the ModelProto fields torch.onnx and other exporters write after ir_version:
# producer_name (2), producer_version (3), domain (4), model_version (5), doc_string (6), graph (7),
# opset_import (8), metadata_props (14)
_ONNX_SECOND_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72}


def detect(source) -> str | None:
    """The format (one of FORMATS) of the open ModelFile ``source`` (minicnn.io.source) from its
    first bytes, or None (HDF5 and unknown files go on to the HDF5 path, which names what it
    expected). A path is opened for the question."""
    from minicnn.io import safetensors_loader, torch_pickle
    from minicnn.io.source import ModelFile, open_model_file

    if not isinstance(source, ModelFile):
        if not Path(source).is_file():
            return None
        with open_model_file(source) as opened:
            return detect(opened)
    head = source.head
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return None
    fmt = torch_pickle.sniff(head, source.library_path)
    if fmt is not None:
        return fmt
    if safetensors_loader.sniff(head, source.size):
        return "safetensors"
    if len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 30 and head[2] in _ONNX_SECOND_TAGS:
        return "onnx"
    return None


def read(path, fmt: str):
    """The Sequential in the file at ``path`` of format ``fmt`` (from ``detect``)."""
    if fmt in ("torch-zip", "torch-legacy"):
        from minicnn.io.torchvision import read_torch_file

        return read_torch_file(path, fmt)
    if fmt == "safetensors":
        from minicnn.io.safetensors_loader import read_safetensors

        return read_safetensors(path)
    if fmt == "onnx":
        from minicnn.io.onnx_loader import read_onnx

        return read_onnx(path)
    raise MinicnnError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
