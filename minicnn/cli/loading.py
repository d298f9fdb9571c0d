"""Loading a model file for a command and moving it to --device, with one-line errors.

A model file named on the command line is untrusted: a damaged HDF5 file can make libhdf5 loop
forever or crash the interpreter before any Python check runs. So every file that is not one of the
shipped models is first read in a short-lived child process with a time limit
(minicnn.io.guard.check_in_child): a hang or a crash becomes one error line within seconds. The
shipped models are recognised by their SHA-256 (``SHIPPED_SHA256``), not by their path, so a
damaged or replaced file in weights/ is guarded like any other; hashing the 0.9 MB file costs about
a millisecond where the child costs a Python start-up (about 0.3 s). A file whose bytes changed
after a retrain is simply guarded until the digest here is updated (tests/io/test_fuzz.py checks
that the digests match the shipped files).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from minicnn.errors import MinicnnError

# SHA-256 of the shipped models (weights/mnist_vgg.h5, weights/mnist_gap.h5, format 2)
SHIPPED_SHA256 = {
    896407: "969b8d2e31f113f6014ae285df4e72f06a80e674428e425ead1334b4cebe3498",
    164588: "d9dcacdc7a22f438efdd2f8e3f6e10a825e635f8d280a88461f351f4ee9d25ff",
}


def is_shipped(path: Path) -> bool:
    """True when the file's bytes are those of a shipped model (size first, then SHA-256)."""
    from minicnn.io.guard import file_sha256

    digest = SHIPPED_SHA256.get(path.stat().st_size)
    return digest is not None and file_sha256(path) == digest


def load_model_file(path, with_format: bool = False):
    """``mc.load(path, with_format)`` for the command line: a file that is not a shipped model is
    validated in a child process first (see the module docstring), and a note (one line on stderr)
    says when a minicnn file carries no checksums. Any failure is one MinicnnError naming the file."""
    import minicnn as mc
    from minicnn.io import foreign
    from minicnn.io.guard import check_in_child
    from minicnn.io.native import UncheckedFileWarning

    path = Path(path)
    try:
        # PyTorch, safetensors and ONNX files never reach libhdf5 (minicnn.io.foreign): no child
        if path.is_file() and not is_shipped(path) and foreign.detect(path) is None:
            check_in_child(path)  # else mc.load says what the path is
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UncheckedFileWarning)
            loaded = mc.load(path, with_format=with_format)
    except MinicnnError:
        raise
    except Exception as exc:  # h5py/numpy errors from a broken file: never a traceback
        raise MinicnnError(f"{path}: could not load the model ({first_line(exc)})") from None
    for w in caught:
        if issubclass(w.category, UncheckedFileWarning):
            print(f"note: {path}: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return loaded


def load_network(path, device: str = "cpu"):
    """Load a model file with ``load_model_file`` and move it to ``device``; any failure becomes
    one MinicnnError naming the file (or the device)."""
    path = Path(path)
    if not path.is_file():
        raise MinicnnError(f"weights file {path} not found (expected a .h5 model file)")
    return move_network(load_model_file(path), device)


def move_network(net, device: str):
    """``net.to(device)`` ("cpu" or "gpu"); a missing GPU becomes a one-line MinicnnError."""
    if device == "cpu":  # networks are loaded and built on the CPU: nothing to move
        return net
    try:
        net.to(device)
    except MinicnnError:
        raise
    except Exception as exc:  # RuntimeError from minicnn.backend, CUDA errors
        raise MinicnnError(f"--device {device}: {first_line(exc)}") from None
    return net


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
