"""Memory pages: how the engine's large arrays get their memory from Linux.

Two process-wide settings, applied only by ``minicnn.tune_process()`` (``apply_policy``), never on
import, each left alone where the user has set the library's own variable.

1. NumPy's request for transparent huge pages, off. NumPy asks Linux for 2 MB pages
   (``madvise(MADV_HUGEPAGE)``) on every allocation of 4 MB or more. Where the kernel's THP defrag
   setting is "madvise" (a common default), the first write to such memory may stall while the
   kernel compacts memory to find 2 MB pages: passes and the reading of large weights then take
   longer, and vary more, than with 4 KB pages. ``NUMPY_MADVISE_HUGEPAGE=1`` keeps NumPy's default.

2. glibc's malloc keeps freed arrays of up to HEAP_LIMIT bytes for reuse. By default it serves
   every allocation above its mmap threshold (128 KB, raised only after such a block is freed, and
   never past 32 MB) with fresh pages from the kernel and unmaps them on free. An engine pass
   allocates the same large arrays pass after pass (each layer's output, Winograd's tiles, each
   gradient), so every pass would pay one page fault, and the zeroing of one 4 KB page, per page it
   writes. With the threshold at HEAP_LIMIT and the heap trimmed only above twice that, the arrays
   of one pass are reused by the next: a handful of faults per pass instead of tens of thousands,
   at the same peak memory. The price: up to 2 x HEAP_LIMIT of freed memory may stay with the
   process between passes. glibc's own variables (``MALLOC_MMAP_THRESHOLD_``,
   ``MALLOC_TRIM_THRESHOLD_``, ``GLIBC_TUNABLES``) decide where set; other C libraries are left as
   they are.

The fault counts, pass times and peak memory behind both: benchmarks/RESULTS.md, "Figures moved out
of minicnn's docstrings".
"""

from __future__ import annotations

import ctypes
import os
import platform

import numpy as np


def apply_policy() -> tuple[bool, bool]:
    """Both settings of the module docstring: (huge pages requested, freed arrays kept for reuse)."""
    return huge_page_policy(), heap_policy()


def huge_page_policy() -> bool:
    """Turn NumPy's huge-page request off unless NUMPY_MADVISE_HUGEPAGE says otherwise.

    Returns whether huge pages are now requested. Where this NumPy has no switch
    (``_set_madvise_hugepage`` exists since NumPy 1.20), nothing changes and False is returned.
    """
    core = getattr(np, "_core", None) or np.core  # NumPy 2 renamed np.core to np._core
    switch = getattr(core.multiarray, "_set_madvise_hugepage", None)
    if switch is None:
        return False
    wanted = os.environ.get("NUMPY_MADVISE_HUGEPAGE", "0") != "0"
    switch(wanted)
    return wanted


HEAP_LIMIT = 256 << 20  # bytes: VGG16's largest per-pass arrays at batch 8 are 103 MB
_GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (glibc's malloc.h)


def heap_policy() -> bool:
    """Have glibc's malloc keep freed blocks of up to HEAP_LIMIT bytes for reuse (module docstring).

    Returns whether it was set: False with another C library, or where glibc's own variables are set.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in _GLIBC_VARIABLES):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # The mmap threshold first: setting either one also stops glibc's own adjustment of both.
    return bool(mallopt(_M_MMAP_THRESHOLD, HEAP_LIMIT)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * HEAP_LIMIT))
