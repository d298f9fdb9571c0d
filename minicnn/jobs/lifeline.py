"""Local worker processes never outlive their client.

A worker of ``--jobs N`` is a child process that waits for tasks. If the client dies without
shutting its pool down (``kill -9``, a crash, SIGTERM before any handler ran), nobody tells the
worker, and it would wait forever, holding its memory and the multiprocessing resource tracker
(which exits only when every process holding its pipe is gone). So each worker, when it starts
(``bind_to_client``, the pool's initializer):

1. asks Linux to send it SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``): immediate, and
   it works even while the worker is busy inside a kernel that holds the GIL;
2. exits at once if the client already died before step 1 (its parent is no longer the client);
3. elsewhere (no prctl), a daemon thread checks every ``POLL_S`` seconds whether its parent changed;
4. ignores SIGINT: Ctrl-C in a terminal reaches every process of the foreground group, and it is the
   client's to handle (it stops the workers itself, ``kill_workers``), not a traceback per worker.

NOTE: Linux sends the death signal when the *thread* that spawned the worker exits, not the whole
process; ``Workers`` must therefore be opened from a thread that lives as long as it (the main thread,
in the CLI).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

POLL_S = 0.5
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _death_signal(signum: int) -> bool:
    """prctl(PR_SET_PDEATHSIG, signum) on Linux; False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(client: int) -> None:
    while True:
        time.sleep(POLL_S)
        if os.getppid() != client:
            os._exit(1)


def bind_to_client(client: int) -> None:
    """Worker side: die with the client process ``client`` (its pid); see the module docstring."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    bound = _death_signal(signal.SIGKILL)
    if os.getppid() != client:  # the client died before the death signal was armed
        os._exit(1)
    if not bound:
        threading.Thread(target=_watch, args=(client,), name="minicnn-lifeline", daemon=True).start()


def kill_workers(pool) -> None:
    """Client side: SIGKILL every worker process of a ``ProcessPoolExecutor`` now (a running task
    is abandoned: its shard was not saved and runs again on resume)."""
    if hasattr(pool, "kill_workers"):  # Python 3.14+
        pool.kill_workers()
        return
    # the pool's own table of its workers, {pid: Process}: what kill_workers walks in 3.14
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.kill()


def start_worker(threads: int, client: int) -> None:
    """The pool's initializer: minicnn's process settings (a worker is minicnn's own process, like
    the command's: ``minicnn.process.tune_process``), at most ``threads`` BLAS/Numba threads
    (``threads.limit_threads``), and bound to the client's life (``bind_to_client``)."""
    from minicnn.jobs.threads import limit_threads
    from minicnn.process import tune_process

    tune_process()
    limit_threads(threads)
    bind_to_client(client)
