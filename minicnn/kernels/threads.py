"""Numba's threading layer, and when a Numba kernel runs on all of its threads or on the calling one.

The layer (``choose_threading_layer``, called by minicnn/kernels/__init__.py before any kernel
runs): TBB where the ``tbb`` package is installed, else "workqueue"; never OpenMP, unless
NUMBA_THREADING_LAYER says otherwise. A ``parallel=True`` kernel hands its loop to the layer's
threads on every call, and a VGG16 saliency pass at batch 1 makes ~60 such calls (and ~30
``gemm.run_parts`` hand-offs). Measured on this project's 2-core virtual machines, a call that
does nothing (2,000 calls, medians): workqueue ~105 us (its two workers sleep on a condition
variable and the calling thread waits for both; waking a halted virtual CPU is slow), TBB ~12 us
(the calling thread takes part, and a worker spins a moment before it sleeps), GNU OpenMP ~2 us.
VGG16 saliency passes at batch 1, 6 processes per layer, alternating, 12 passes each: TBB 226 ms
(median of the process medians; 212-246) against workqueue 250 ms (235-258). OpenMP is left out
although its hand-off is the fastest: its idle threads spin ~11 ms (GOMP_SPINCOUNT's default)
while ``gemm.run_parts``'s threads need the cores (passes took 400 ms); the spin count is read
once per process from the environment by libgomp, which PyTorch's wheel also ships under the same
name, so whichever loads first sets it for both; and a process that forks after using GNU OpenMP
cannot run a parallel kernel in the child (Numba terminates it). TBB and workqueue are fork-safe.

Most of the elementwise kernels of a VGG16 pass at batch 1 have less work than a workqueue hand-off:
timed alone (medians of 61 calls, 2 threads, the data in cache), a ReLU over 100,352 float32 values
(a 14 x 14 x 512 activation) took 93 us in parallel under workqueue, 10 us under TBB and 10 us on
one thread; over 401,408 148 / 23 / 38 us; over 802,816 (56 x 56 x 256) 244 / 38 / 81 us; over
3,211,264 (224 x 224 x 64) 1055 / 381 / 828 us. In a pass the large arrays come from memory, not
cache, and two threads draw more bandwidth: VGG16's first max-pool backward (3.2 M values written)
took 2.0 ms in parallel and 3.7 ms on one thread under workqueue (medians of 15 passes). So such
kernels run in parallel from ``PARALLEL_MIN_ELEMENTS[layer]`` elements, and below it as their
``serial`` build. Results are the same bits either way: the kernels that go through ``sized``
(ReLU, max-pooling) compute each output element on its own.

``serial`` builds are also what each thread of ``gemm.run_parts`` runs (Winograd's small layers,
minicnn/kernels/winograd.py): there a parallel kernel must not run, because the workqueue layer
aborts the process when two Python threads start parallel kernels at once.
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
