"""Memory pages: minicnn turns off NumPy's request for transparent huge pages.

NumPy asks Linux for 2 MB pages (``madvise(MADV_HUGEPAGE)``) on every allocation of 4 MB or more.
Where the kernel's THP defrag setting is "madvise" (a common default), the first write to such
memory may stall while the kernel compacts memory to find 2 MB pages. An engine pass allocates
large temporaries layer after layer (Winograd tiles, outputs, gradients), and loading writes every
weight into fresh memory, so the stalls land on them. Measured on the 2-core CI machine:

- VGG16 at batch 1, forward + saliency, 12 passes per process, two processes each way:
  median 294 and 340 ms with huge pages (spread 248-502), 276 and 273 ms without (250-372);
- reading VGG16's 392 MB fc1 weight from the page cache: 0.07 s when huge pages were at hand,
  0.5-0.9 s when the kernel had to compact for them, 0.20-0.21 s every time with 4 KB pages.

So ``apply_policy`` (run once when the engine's array code loads, minicnn/backend.py) switches the
request off at run time, whether NumPy was loaded before minicnn or not. NumPy's own variable
decides where it is set: ``NUMPY_MADVISE_HUGEPAGE=1`` keeps NumPy's default.
"""

from __future__ import annotations

import os

import numpy as np


def apply_policy() -> bool:
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
