"""Atomic output: write to a temporary name in the target's folder, then rename.

An interrupted run (an exception, Ctrl-C, a full disk, SIGTERM) never leaves a half-written file at
the target path, nor the temporary file; ``os.replace`` is atomic on one filesystem, which is why the
temporary file sits beside the target.

SIGTERM's default action ends the process at once, without running Python's cleanup, so while a
temporary file exists (and only then) SIGTERM raises ``Terminated`` (a SystemExit with code
128 + 15, what the shell reports for a process killed by SIGTERM) in the main thread; the
temporary file is deleted on the way out and the process still ends with that code.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import threading
from pathlib import Path


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class Terminated(SystemExit):
    """SIGTERM arrived while a temporary output file existed (exit code 143)."""


def _terminate(signum, frame):
    raise Terminated(128 + signum)


@contextlib.contextmanager
def _sigterm_raises():
    """While inside, SIGTERM raises Terminated (main thread, default handler only); restored after.

    A handler someone else installed is left alone: they decided what SIGTERM does.
    """
    install = threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    )
    if install:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        if install:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def atomic_path(target, suffix: str | None = None):
    """Yield a temporary path beside ``target``; on success rename it to ``target``, else delete it.

    >>> with atomic_path("out/picture.png") as tmp:
    ...     image.save(tmp, format="PNG")
    """
    target = Path(target)
    with _sigterm_raises():
        # the name is chosen before the file exists, so that an interrupt arriving at any moment after
        # the file is created (Ctrl-C lands between any two bytecodes) finds the name to delete
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}{suffix or target.suffix or '.tmp'}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            yield Path(tmp)
            # mkstemp creates the file private (0600); give it the permissions open() would have
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
