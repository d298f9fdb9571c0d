"""Atomic output: write to a temporary name in the target's folder, then rename.

An interrupted run (an exception, Ctrl-C, a full disk) never leaves a half-written file at the target
path; ``os.replace`` is atomic on one filesystem, which is why the temporary file sits beside the target.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target, suffix: str | None = None):
    """Yield a temporary path beside ``target``; on success rename it to ``target``, else delete it.

    >>> with atomic_path("out/picture.png") as tmp:
    ...     image.save(tmp, format="PNG")
    """
    target = Path(target)
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp"
    )
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file private (0600); give it the permissions open() would have
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
