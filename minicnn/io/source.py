"""A model file opened once: what is checked is what is read.

A path names a file only at the moment it is opened: between a check of ``model.h5`` and its
reading, someone can rename another file onto that name, and the reading would take bytes nobody
checked. So ``open_model_file(path)`` opens the file once (one descriptor, read-only) and everything
after works on that open file: the first bytes that tell the format, the SHA-256 that recognises a
shipped model, the guard's child process (which inherits the descriptor) and the reader itself.

h5py reads the descriptor through a file object (``ModelFile.reader()``, h5py's "fileobj" driver:
libhdf5 given a path insists on resolving it, which fails for a file renamed over meanwhile).
Libraries that want a path (zipfile, the safetensors and onnx packages) get
``ModelFile.library_path``: ``/proc/self/fd/N`` on Linux (``/dev/fd/N`` elsewhere), which opens
the file behind descriptor N, whatever its name points to now. Messages name ``ModelFile.name``,
the path the user gave.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from minicnn.errors import MinicnnError

HEAD_BYTES = 16  # enough for every format's signature (minicnn.io.foreign)


@dataclass(frozen=True)
class ModelFile:
    """An open model file. name: the path as given (for messages); fd: a read-only descriptor;
    size: bytes, from fstat of that descriptor; head: its first HEAD_BYTES bytes (fewer if shorter)."""

    name: Path
    fd: int
    size: int
    head: bytes

    @property
    def library_path(self) -> str:
        """A path that opens this same file for a library that wants a path (see the module)."""
        return fd_path(self.fd) or str(self.name)

    def reader(self):
        """An unbuffered binary file object over the descriptor (not closing it); it seeks, every
        other reader here uses pread."""
        return os.fdopen(self.fd, "rb", buffering=0, closefd=False)

    def sha256(self, chunk: int = 2**20) -> str:
        """SHA-256 (hex) of the file's bytes, read with pread in 1 MiB pieces (no seek)."""
        h, offset = hashlib.sha256(), 0
        while block := os.pread(self.fd, chunk, offset):
            h.update(block)
            offset += len(block)
        return h.hexdigest()


def fd_path(fd: int) -> str | None:
    """``/proc/self/fd/<fd>`` (Linux) or ``/dev/fd/<fd>`` (macOS, BSD): a name for the open file;
    None where the system has neither."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(folder):
            return f"{folder}/{fd}"
    return None


@contextlib.contextmanager
def open_model_file(path):
    """Open ``path`` read-only once and yield its ModelFile; closed on exit.

    MinicnnError (naming the path) when it does not exist, is not a regular file (a folder, a FIFO,
    a device: opened without blocking, then refused) or cannot be opened.
    """
    name = Path(path)
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever
    flags = (
        os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    )
    try:
        fd = os.open(name, flags)
    except FileNotFoundError:
        raise MinicnnError(f"{name}: no such file") from None
    except OSError as exc:
        raise MinicnnError(f"{name}: cannot open the file ({exc.strerror or type(exc).__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise MinicnnError(f"{name}: not a file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        yield ModelFile(name, fd, info.st_size, os.pread(fd, HEAD_BYTES, 0))
    finally:
        os.close(fd)
