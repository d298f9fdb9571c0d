"""Reading an untrusted HDF5 file first in a short-lived child process, with a time limit.

Some corruptions of an HDF5 file's metadata make libhdf5 itself loop forever (ignoring Ctrl-C) or
crash the interpreter with a segmentation fault: one flipped byte in the global heap of a version 1
minicnn file is enough. No check written in Python can run before libhdf5 parses those bytes, so
the only defence is to let a throw-away process parse them first: ``check_in_child`` starts a child
on ``validate_file``, which opens the file, walks its structure (minicnn.io.h5check), reads every
attribute of every object and the bytes of every dataset, i.e. every part of the file that the real
load will touch, and exits. A crash (the child dies of a signal) or a hang (it exceeds the time
limit and is killed) becomes one MinicnnError naming the file; so does the child's own
MinicnnError. Only then does the caller load the file itself.

The child is a guest that must not do more than that:

- It reads the parent's open file (minicnn.io.source): the descriptor is inherited (``pass_fds``)
  and read through it, so the bytes it checks are the bytes the parent then reads, even if someone
  renames another file onto the path in between.
- It starts isolated (``python -I``): ``python -c`` would put the current directory first on
  ``sys.path``, and an ``h5py.py`` or ``numpy.py`` lying beside the model would run. The parent's
  ``sys.path`` (less the current directory) is passed explicitly, minicnn's own root first.
- It dies with the parent: on Linux it asks the kernel for SIGKILL when the parent ends
  (``prctl(PR_SET_PDEATHSIG)``), and a CPU-time limit (``RLIMIT_CPU``) ends a spinning orphan
  anywhere else; while it runs, SIGTERM to the parent raises (minicnn.io.atomic) so that the
  parent kills the child on its way out.
- Its time limit grows with the file (slow disks) but never past ``MAX_TIMEOUT``: a sparse 2 TB
  copy of a hanging file is refused in a minute, not in six hours.

The child imports h5py and NumPy only (not Numba): its cost is one Python start-up.
``check_untrusted`` skips it for the shipped models, recognised by their SHA-256 (``SHIPPED``),
not by their path, so a damaged or replaced file in weights/ is guarded like any other.

PyTorch, safetensors and ONNX files get no child: their readers are a restricted pickle machine
(pure Python over CPython's unpickler), the safetensors package (Rust) and protobuf (upb, fuzzed
continuously), whose work is bounded by the file's size and whose failures are Python exceptions,
not hangs or crashes; none of them is known to loop or crash on a damaged file as libhdf5 is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from minicnn.errors import MinicnnError, quote
from minicnn.io.source import ModelFile, open_model_file

# seconds: parsing a damaged header is quick and the child's start-up is one Python start-up
# (several times longer on a loaded machine), both well inside the default; reading weights is
# allowed a further second per 100 MB (slow disks), up to MAX_TIMEOUT in all (room for VGG19's
# 575 MB on a slow disk)
DEFAULT_TIMEOUT = 5.0
SECONDS_PER_BYTE = 1 / 100e6
MAX_TIMEOUT = 60.0

# (size in bytes, SHA-256) of the shipped models (weights/*.h5) by file name: a file of another size
# is not hashed at all. tests/io/test_guard.py checks them against the files, so a retrained model
# must update its entry here (until then it is guarded like any file)
SHIPPED = {
    "mnist_vgg.h5": (896407, "969b8d2e31f113f6014ae285df4e72f06a80e674428e425ead1334b4cebe3498"),
    "mnist_gap.h5": (164588, "d9dcacdc7a22f438efdd2f8e3f6e10a825e635f8d280a88461f351f4ee9d25ff"),
    "mnist_vgg_permuted.h5": (883693, "ee4462fd52e04671b49dd0de5366f6c4ff90b00205fac0f27177d5877d8d59be"),
}

_CHILD = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from minicnn.io.guard import _child_main; _child_main(*sys.argv[2:])"
)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def validate_file(file, name=None) -> None:
    """Open the HDF5 file, check its structure, read every attribute and every dataset.

    file: a path or a binary file object (the inherited descriptor in the child); name: the file
    named in messages (default: file). Raises MinicnnError (naming the file) for anything
    minicnn.io.loader would refuse before reading, and for datasets over the size bound; returns
    None when every byte libhdf5 will be asked for could be read. Meant to run in the child
    process of ``check_in_child``.
    """
    import h5py

    from minicnn.io.h5check import MAX_ARRAY_BYTES, check_storage, check_structure, open_h5

    name = name or file
    with open_h5(file, name) as f:
        try:
            check_structure(f)
            objects = [f]
            f.visititems(lambda _, obj: objects.append(obj))
            for obj in objects:
                for key in obj.attrs:
                    obj.attrs[key]
                if isinstance(obj, h5py.Dataset):
                    what = f"dataset {quote(obj.name)}"
                    nbytes = int(obj.size) * obj.dtype.itemsize
                    if nbytes > MAX_ARRAY_BYTES:
                        raise MinicnnError(f"{what} declares {nbytes} bytes, over the limit")
                    check_storage(obj.id, nbytes, what)
                    obj[()]
        except MinicnnError as exc:
            raise MinicnnError(f"{name}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - whatever libhdf5 reports about a damaged file
            text = str(exc).splitlines()[0] if str(exc) else ""
            raise MinicnnError(
                f"{name}: cannot read the file, corrupt ({type(exc).__name__}: {text[:160]})"
            ) from None


def _die_with_parent(parent: int, cpu_seconds: int) -> None:
    """In the child: SIGKILL when the parent ends (Linux), and a CPU-time limit (POSIX)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent ended before the request: nobody waits for us
            os._exit(3)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    except (ImportError, ValueError, OSError):  # no resource module (Windows), or a lower hard limit
        pass


def _child_main(fd: str, name: str, parent: str, cpu_seconds: str) -> None:
    """Entry point of the child: exit 0 when the file behind the inherited descriptor ``fd`` reads,
    2 with the message on stdout if not."""
    import warnings

    _die_with_parent(int(parent), int(cpu_seconds))
    warnings.simplefilter("ignore")
    try:
        with os.fdopen(int(fd), "rb", buffering=0, closefd=False) as file:
            validate_file(file, name)
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


def time_limit(nbytes: int) -> float:
    """Seconds the child may take for a file of ``nbytes`` bytes: $MINICNN_GUARD_TIMEOUT (else
    DEFAULT_TIMEOUT) plus SECONDS_PER_BYTE per byte, at most MAX_TIMEOUT (or the variable, if
    larger: whoever sets it decided)."""
    base = float(os.environ.get("MINICNN_GUARD_TIMEOUT", DEFAULT_TIMEOUT))
    return min(base + nbytes * SECONDS_PER_BYTE, max(MAX_TIMEOUT, base))


def _child_sys_path() -> list[str]:
    """The child's sys.path: minicnn's root, then the parent's entries less the current directory
    ('' or its absolute path, which ``python -m`` and ``-c`` put first)."""
    here = os.getcwd()
    rest = [p for p in sys.path if p and os.path.abspath(p) != here and p != _PACKAGE_ROOT]
    return [_PACKAGE_ROOT, *rest]


def check_in_child(source, timeout: float | None = None) -> None:
    """Validate a model file in a child process (``validate_file``); MinicnnError if it fails,
    crashes or takes longer than ``timeout`` seconds (default: ``time_limit`` of its size).

    source: an open ModelFile (minicnn.io.source), whose descriptor the child inherits, or a path,
    opened here for the check.
    """
    if not isinstance(source, ModelFile):
        with open_model_file(source) as opened:
            return check_in_child(opened, timeout)
    from minicnn.io.atomic import _sigterm_raises

    name = source.name
    if timeout is None:
        timeout = time_limit(source.size)
    command = [
        sys.executable,
        "-I",
        "-c",
        _CHILD,
        json.dumps(_child_sys_path()),
        str(source.fd),
        os.fsdecode(name),
        str(os.getpid()),
        str(int(timeout) + 2),
    ]
    try:
        # SIGTERM raises while the child runs: subprocess.run kills the child on any exception
        with _sigterm_raises():
            done = subprocess.run(
                command, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, pass_fds=(source.fd,)
            )
    except subprocess.TimeoutExpired:
        raise MinicnnError(
            f"{name}: reading the file did not finish within {timeout:.1f} s (a corrupt HDF5 file can make "
            "libhdf5 loop forever); refused"
        ) from None
    if done.returncode == 0:
        return
    message = done.stdout.decode("utf-8", "replace").strip().splitlines()
    if done.returncode == 2 and message:
        raise MinicnnError(message[0])
    if done.returncode < 0:
        raise MinicnnError(
            f"{name}: the HDF5 library crashed reading the file ({_signal_name(-done.returncode)}); "
            "the file is corrupt"
        )
    last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or [""])[-1]
    raise MinicnnError(
        f"{name}: the file could not be validated (exit {done.returncode}: {quote(last, 200)})"
    )


def is_shipped(source: ModelFile) -> bool:
    """True when the open file's bytes are those of a shipped model (size first, then SHA-256)."""
    digests = {digest for size, digest in SHIPPED.values() if size == source.size}
    return bool(digests) and source.sha256() in digests


def check_untrusted(source: ModelFile) -> None:
    """The one decision: a shipped model (by digest) is read as it is, any other HDF5 file is
    validated in a child first (``check_in_child``)."""
    if not is_shipped(source):
        check_in_child(source)


def file_sha256(path, chunk: int = 2**20) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB pieces."""
    with open_model_file(path) as source:
        return source.sha256(chunk)
