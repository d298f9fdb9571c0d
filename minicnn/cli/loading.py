"""Loading a model file for a command and moving it to --device, with one-line errors.

A model file named on the command line is untrusted: a damaged HDF5 file can make libhdf5 loop
forever or crash the interpreter before any Python check runs. So every command loads through
``mc.load(path, guard=True)``, where the one decision is made (minicnn.io.guard.check_untrusted):
an HDF5 file that is not a shipped model (recognised by its SHA-256, not its path) is first read in
a short-lived child process with a time limit. The file is opened once for all of it
(minicnn.io.source). ``--weights`` also takes the short names of the shipped models
(``mnist_vgg``, ``mnist_gap``, ``mnist_vgg_permuted``: minicnn.paths.SHIPPED).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from minicnn.errors import MinicnnError


def load_model_file(path, with_format: bool = False):
    """``mc.load(path, with_format, guard=True)`` for the command line, and a note (one line on
    stderr) when a minicnn file carries no checksums. Any failure is one MinicnnError naming the
    file."""
    import minicnn as mc
    from minicnn.io.native import UncheckedFileWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UncheckedFileWarning)
            loaded = mc.load(path, with_format=with_format, guard=True)
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
    """Load a model file (or a shipped model by its short name) with ``load_model_file`` and move it
    to ``device``; any failure becomes one MinicnnError naming the file (or the device)."""
    from minicnn import paths
    from minicnn.io.formats import model_files

    given = Path(path)
    if not given.exists() and os.fspath(path) not in paths.short_names("model"):
        raise MinicnnError(
            f"weights file {given} not found (expected a model file, or a shipped model: "
            f"{', '.join(paths.short_names('model'))}; model files: {model_files()})"
        )
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
