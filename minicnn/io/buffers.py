"""Fresh arrays for weights read from a file, allocated without a request for huge pages.

NumPy asks Linux for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every allocation of
4 MB or more. Where the kernel's THP defrag setting is "madvise" (a common default), the first write
to such memory may stall while the kernel compacts memory to find 2 MB pages. Measured on the
2-core CI machine, reading VGG16's 392 MB fc1 weight from the page cache: 0.07 s when huge pages
were at hand, 0.5-0.9 s when the kernel had to compact for them, and 0.20-0.21 s every time with
ordinary pages (``python benchmarks/load_torch_files.py``). A loader writes each weight once, so
the steady 4 KB-page cost is the better trade; computation keeps NumPy's default.
"""

from __future__ import annotations

import numpy as np


def empty_for_reading(shape, dtype) -> np.ndarray:
    """np.empty(shape, dtype) without NumPy's huge-page request (see the module docstring).

    shape: a tuple of ints; dtype: any NumPy dtype. Falls back to plain np.empty where this NumPy
    has no switch (the switch, ``_set_madvise_hugepage``, exists in NumPy 1.20 and later).
    """
    core = getattr(np, "_core", None) or np.core  # NumPy 2 renamed np.core to np._core
    switch = getattr(core.multiarray, "_set_madvise_hugepage", None)
    if switch is None:
        return np.empty(shape, dtype=dtype)
    before = switch(False)
    try:
        return np.empty(shape, dtype=dtype)
    finally:
        switch(before)
