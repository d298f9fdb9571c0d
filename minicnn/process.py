"""Process-wide settings that speed minicnn's passes up, applied only on request: ``tune_process()``.

``import minicnn`` and every call of its API leave the host process as they found it: its
environment, its memory allocator, NumPy's settings and Numba's threading layer. The settings below
change how every library in the process allocates memory and runs threads, so they are the
program's decision, not a library's: a program that wants them calls ``minicnn.tune_process()``
once, as early as it can. The ``minicnn`` command owns its process and does so first thing
(minicnn/cli/main.py). Without them minicnn computes the same numbers, more slowly on some
machines (benchmarks/RESULTS.md, "Process settings").

1. ``OPENBLAS_THREAD_TIMEOUT=4`` in the environment, unless set: OpenBLAS's idle threads go to sleep
   at once after a product instead of spinning, so they do not take the cores from the Numba
   kernels that run between products. OpenBLAS reads it when it loads, so it counts only when
   ``tune_process`` runs before NumPy is first imported.
2. NumPy's huge-page request off, and glibc's malloc keeping freed arrays for the next pass
   (minicnn/pages.py says why, and which variables of the user's own keep their say).
3. Numba's threading layer: TBB where the ``tbb`` package is installed, else workqueue, never
   OpenMP (minicnn/kernels/threads.py says why); NUMBA_THREADING_LAYER, where set, chooses. It
   counts only before the first parallel Numba kernel of the process runs.

What minicnn does scope to its own calls stays there: a split matrix product sets BLAS to one
thread while its parts run and restores the count before it returns (minicnn/kernels/gemm.py).
"""

from __future__ import annotations

import os

# Before anything here imports NumPy, so that item 1 can still reach OpenBLAS.
OPENBLAS_TIMEOUT = "4"


def tune_process() -> dict:
    """Apply the three settings of the module docstring to this process (idempotent).

    Returns what is in force afterwards: ``{"openblas_thread_timeout": str | None, "huge_pages":
    bool, "heap_kept": bool, "threading_layer_priority": list[str] | None}`` (the last None where
    the user's NUMBA_THREADING_LAYER decides).
    """
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_TIMEOUT)

    import numba

    from minicnn import pages
    from minicnn.kernels import threads

    huge_pages, heap_kept = pages.apply_policy()
    threads.choose_threading_layer()
    chosen = "NUMBA_THREADING_LAYER" not in os.environ
    return {
        "openblas_thread_timeout": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
        "huge_pages": huge_pages,
        "heap_kept": heap_kept,
        "threading_layer_priority": list(numba.config.THREADING_LAYER_PRIORITY) if chosen else None,
    }
