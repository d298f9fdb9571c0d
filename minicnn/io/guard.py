"""Reading an untrusted HDF5 file first in a short-lived child process, with a time limit.

Some corruptions of an HDF5 file's metadata make libhdf5 itself loop forever (ignoring Ctrl-C) or
crash the interpreter with a segmentation fault: one flipped byte in the global heap of a version 1
minicnn file is enough. No check written in Python can run before libhdf5 parses those bytes, so
the only defence is to let a throw-away process parse them first: ``check_in_child(path)`` starts
``python -c`` on ``validate_file(path)``, which opens the file, walks its structure
(minicnn.io.h5check), reads every attribute of every object and the bytes of every dataset, i.e.
every part of the file that the real load will touch, and exits. A crash (the child dies of a
signal) or a hang (it exceeds ``timeout`` seconds and is killed) becomes one MinicnnError naming
the file; so does the child's own MinicnnError. Only then does the caller load the file itself.

The child imports h5py and NumPy only (not Numba): its cost is one Python start-up, about 0.3 s.
The command line skips it for the shipped models, recognised by their SHA-256 (``shipped_digest``).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from minicnn.errors import MinicnnError

# seconds: parsing a damaged header takes milliseconds; the child's start-up about 0.3 s (several
# on a loaded machine); reading weights is allowed a further second per 100 MB (slow disks)
DEFAULT_TIMEOUT = 5.0
SECONDS_PER_BYTE = 1 / 100e6
_CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); from minicnn.io.guard import _child_main; "
    "_child_main(sys.argv[2])"
)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def validate_file(path) -> None:
    """Open the HDF5 file, check its structure, read every attribute and every dataset.

    Raises MinicnnError (naming the file) for anything minicnn.io.loader would refuse before
    reading, and for datasets over the size bound; returns None when every byte libhdf5 will be
    asked for could be read. Meant to run in the child process of ``check_in_child``.
    """
    import h5py

    from minicnn.io.h5check import MAX_ARRAY_BYTES, _storage_can_hold, check_structure
    from minicnn.io.loader import open_h5

    path = Path(path)
    with open_h5(path) as f:
        try:
            check_structure(f)
            objects = [f]
            f.visititems(lambda _, obj: objects.append(obj))
            for obj in objects:
                for key in obj.attrs:
                    obj.attrs[key]
                if isinstance(obj, h5py.Dataset):
                    nbytes = int(obj.size) * obj.dtype.itemsize
                    if nbytes > MAX_ARRAY_BYTES:
                        raise MinicnnError(f"dataset {obj.name!r} declares {nbytes} bytes, over the limit")
                    _storage_can_hold(obj.id, nbytes, f"dataset {obj.name!r}")
                    obj[()]
        except MinicnnError as exc:
            raise MinicnnError(f"{path}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - whatever libhdf5 reports about a damaged file
            text = str(exc).splitlines()[0] if str(exc) else ""
            raise MinicnnError(
                f"{path}: cannot read the file, corrupt ({type(exc).__name__}: {text})"
            ) from None


def _child_main(path: str) -> None:
    """Entry point of the child: exit 0 when the file reads, 2 with the message on stdout if not."""
    import warnings

    warnings.simplefilter("ignore")
    try:
        validate_file(path)
    except MinicnnError as exc:
        sys.stdout.buffer.write(str(exc).encode("utf-8", "backslashreplace"))
        sys.stdout.flush()
        os._exit(2)
    sys.stdout.flush()
    os._exit(0)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def check_in_child(path, timeout: float | None = None) -> None:
    """Validate ``path`` in a child process (``validate_file``); MinicnnError if it fails, crashes
    or takes longer than ``timeout`` seconds (default: $MINICNN_GUARD_TIMEOUT or DEFAULT_TIMEOUT,
    plus SECONDS_PER_BYTE per byte of the file)."""
    path = Path(path)
    if timeout is None:
        base = float(os.environ.get("MINICNN_GUARD_TIMEOUT", DEFAULT_TIMEOUT))
        timeout = base + path.stat().st_size * SECONDS_PER_BYTE
    command = [sys.executable, "-c", _CHILD, _PACKAGE_ROOT, os.fsencode(path)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise MinicnnError(
            f"{path}: reading the file did not finish within {timeout:.1f} s (a corrupt HDF5 file can make "
            "libhdf5 loop forever); refused"
        ) from None
    if done.returncode == 0:
        return
    message = done.stdout.decode("utf-8", "replace").strip().splitlines()
    if done.returncode == 2 and message:
        raise MinicnnError(message[0])
    if done.returncode < 0:
        raise MinicnnError(
            f"{path}: the HDF5 library crashed reading the file ({_signal_name(-done.returncode)}); "
            "the file is corrupt"
        )
    last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or [""])[-1]
    raise MinicnnError(f"{path}: the file could not be validated (exit {done.returncode}: {last[:200]})")


def file_sha256(path, chunk: int = 2**20) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
