"""Numba's threading layer, and when a Numba kernel runs on all of its threads or on the calling one.

The layer (``choose_threading_layer``, applied by ``minicnn.tune_process()``, never on import): TBB
where the ``tbb`` package is installed, else "workqueue"; never OpenMP, unless NUMBA_THREADING_LAYER
says otherwise. A ``parallel=True`` kernel hands its loop to the layer's threads on every call, and
a VGG16 pass makes dozens of such calls, so the cost of a hand-off counts:

- workqueue's workers sleep on a condition variable and the calling thread waits for all of them,
  so each hand-off wakes sleeping threads (slow on virtual CPUs);
- TBB's calling thread takes part in the loop, and a worker spins a moment before it sleeps, so a
  hand-off costs a fraction of workqueue's;
- GNU OpenMP hands off fastest, but its idle threads spin (GOMP_SPINCOUNT) while the threads of
  ``gemm.run_parts`` need the cores; libgomp reads the spin count once per process, and PyTorch's
  wheel ships a libgomp of the same name, so whichever loads first sets it for both; and a process
  that forks after using GNU OpenMP cannot run a parallel kernel in the child (Numba terminates
  it). TBB and workqueue are fork-safe.

An elementwise kernel over a small array has less work than one hand-off, so the kernels that go
through ``sized`` (ReLU, max-pooling) run in parallel from ``PARALLEL_MIN_ELEMENTS[layer]``
elements and below it as their ``serial`` build; large arrays come from memory rather than cache,
and two threads draw more memory bandwidth than one. Results are the same bits either way: those
kernels compute each output element on its own. (The hand-off and kernel timings behind the layer
choice and the thresholds: benchmarks/RESULTS.md, "Figures moved out of minicnn's docstrings".)

The threads of ``gemm.run_parts`` (Winograd's small layers, minicnn/kernels/winograd.py) must not
run a parallel kernel either, because the workqueue layer aborts the process when two Python threads
start parallel kernels at once: they run each Winograd transform's ``channels`` kernel, compiled
without threads, which the transform's parallel kernel also calls (one build of the loops for both).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import sys
import types

import numba

from minicnn.kernels.compiled import njit

# Elements (of the largest array a kernel walks) from which a kernel runs on all threads, by
# threading layer (see above; a layer the user names that is not here counts as TBB).
PARALLEL_MIN_ELEMENTS = {"workqueue": 1 << 20, "tbb": 1 << 18}

# Numba tries these in order when THREADING_LAYER is "default"; the list must name all three.
_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]


def choose_threading_layer() -> None:
    """Make Numba use TBB where the ``tbb`` package is installed, else workqueue (see above). Does
    nothing where NUMBA_THREADING_LAYER is set (the user's choice); has no effect once Numba's layer
    has started. Call before the first parallel kernel runs."""
    if "NUMBA_THREADING_LAYER" in os.environ:
        return
    _load_tbb()
    numba.config.THREADING_LAYER_PRIORITY = list(_LAYER_PRIORITY)
    numba.config.THREADING_LAYER = "default"  # the first of _LAYER_PRIORITY that loads


def _load_tbb() -> None:
    """Load the ``tbb`` wheel's libtbb.so.12 by its path, where there is one (Linux).

    pip puts the library in <environment>/lib, outside the dynamic loader's search path unless the
    interpreter was built with that folder on its run path (a virtual environment's never is);
    Numba asks for it by name, and would then fall back to workqueue. Loaded here, it is found under
    that name. Nothing happens where the package is missing or the file does not load.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        files = importlib.metadata.distribution("tbb").files or []
    except importlib.metadata.PackageNotFoundError:
        return
    for file in files:
        if file.name == "libtbb.so.12":
            try:
                ctypes.CDLL(str(file.locate()), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                pass  # Numba's own lookup decides
            return


def threading_layer() -> str:
    """The threading layer Numba runs (started now if it was not)."""
    numba.get_num_threads()  # starts the layer
    return numba.threading_layer()


_SERIAL: dict = {}


def serial(kernel):
    """``kernel`` (a Numba ``parallel=True`` dispatcher) compiled again without threads and without
    the GIL (its prange runs as a plain loop). Kept per kernel.

    The copy gets a name of its own ("<name>_serial"): Numba's on-disk cache files compiled code
    under the function's qualified name and signature, not its flags, and would hand the parallel
    build to the serial dispatcher.
    """
    found = _SERIAL.get(kernel)
    if found is None:
        fn = kernel.py_func
        copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__)
        copy.__qualname__ = fn.__qualname__ + "_serial"
        found = _SERIAL[kernel] = njit(nogil=True)(copy)
    return found


def sized(kernel, elements: int):
    """``kernel`` itself for at least PARALLEL_MIN_ELEMENTS[layer] elements (and more than one Numba
    thread), else its ``serial`` build."""
    threads = numba.get_num_threads()  # also starts the layer, so that it has a name
    least = PARALLEL_MIN_ELEMENTS.get(numba.threading_layer(), PARALLEL_MIN_ELEMENTS["tbb"])
    if threads > 1 and elements >= least:
        return kernel
    return serial(kernel)
