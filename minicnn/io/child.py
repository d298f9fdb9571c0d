"""Running a function of minicnn in a child Python process: a crash, a hang or an exception there is
one MinicnnError here.

``run_in_child(entry, folder, what, timeout, echo)`` starts ``python -I`` on ``entry`` ("module:function"
of minicnn), which reads its inputs from ``folder`` and writes its outputs there. The child exits 0
when it is done, 2 with one line on stdout for a MinicnnError (its own message), anything else for
a failure, which the parent reports with the last line of the child's stderr (copied to the
parent's stderr as it comes with ``echo``: a progress bar). The child starts
isolated (no current directory on sys.path, the parent's sys.path passed explicitly, minicnn's root
first), dies with its parent, and is killed after ``timeout`` seconds, as the HDF5 guard's child
is (io/guard.py).

What runs there is the caller's business: ``verify --torch-model`` runs the user's own model file
there, so that an exception, a segmentation fault or an endless loop in that code is one line.
"""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
import threading

from minicnn.errors import MinicnnError
from minicnn.io.guard import _child_sys_path, _die_with_parent, _signal_name

_CHILD = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from minicnn.io.child import _child_main; _child_main(*sys.argv[2:])"
)


def _child_main(entry: str, folder: str, parent: str, cpu_seconds: str) -> None:
    """In the child: run ``entry(folder)``; exit 0, or 2 with a MinicnnError's message on stdout."""
    import importlib

    _die_with_parent(int(parent), int(cpu_seconds))
    module, function = entry.split(":")
    try:
        getattr(importlib.import_module(module), function)(folder)
    except MinicnnError as exc:
        sys.stdout.write(str(exc).splitlines()[0] if str(exc) else "failed")
        sys.stdout.flush()
        os._exit(2)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_in_child(entry: str, folder, what: str, timeout: float, echo: bool = False) -> None:
    """Run minicnn's ``entry`` ("module:function", called with the folder's path) in a child
    process. MinicnnError naming ``what`` when it raises one, crashes, fails or passes ``timeout``
    seconds. With ``echo`` the child's stderr (a framework's progress bar) is copied to ours as it
    comes, so a long reference is seen to move; its last line names a failure either way."""
    cpu = max(int(timeout) + 5, 10)
    argv = [sys.executable, "-I", "-c", _CHILD, json.dumps(_child_sys_path()), entry, str(folder),
            str(os.getpid()), str(cpu)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = bytearray(), bytearray()
    # NOTE: both pipes are drained by threads while we wait: a child that fills one pipe (the user's
    # model printing) would otherwise block, and a progress bar ends its lines with \r, not \n.
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, out, None), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, err, sys.stderr if echo else None), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise MinicnnError(f"{what}: no answer within {timeout:g} s (the child was stopped)") from None
    except BaseException:  # Ctrl-C or SIGTERM: the child goes with us
        proc.kill()
        proc.wait()
        raise
    finally:
        for pump in pumps:
            pump.join(timeout=5)
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    if proc.returncode == 0:
        return
    if proc.returncode == 2 and out.strip():
        raise MinicnnError(f"{what}: {out.strip().splitlines()[-1]}")
    if proc.returncode < 0:
        raise MinicnnError(f"{what}: the child process crashed ({_signal_name(-proc.returncode)})")
    last = [line for line in err.strip().splitlines() if line.strip()]
    raise MinicnnError(f"{what}: failed ({last[-1].strip()[:200] if last else f'exit {proc.returncode}'})")


#: bytes of each of the child's streams kept for the message of a failure
KEPT = 65536


def _pump(stream, kept: bytearray, echo) -> None:
    """Read ``stream`` to its end as it comes, keeping its last KEPT bytes, copying it to ``echo``."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a chunk may end inside a character
    for chunk in iter(lambda: stream.read1(8192), b""):
        if echo is not None:
            echo.write(decoder.decode(chunk))
            echo.flush()
        kept.extend(chunk)
        del kept[:-KEPT]
    stream.close()
