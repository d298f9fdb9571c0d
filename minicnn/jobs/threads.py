"""How many threads a local worker process may use, set before NumPy and Numba are imported.

BLAS (OpenBLAS, MKL) and Numba size their thread pools once, when they load, from these variables.
Two worker processes that each start one thread per core fight over the cores and run slower than
one; so each local worker gets one thread unless the user asks for more. This module imports
nothing but ``os`` so that a spawned worker can run it before anything loads NumPy.
"""

from __future__ import annotations

import contextlib
import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Worker initializer: at most ``threads`` BLAS/OpenMP/Numba threads in this process."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(int(threads))


@contextlib.contextmanager
def thread_environment(threads: int):
    """Set the thread variables in this process's environment while worker processes are spawned
    (a spawned child inherits them before its first import), then restore them."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    limit_threads(threads)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
