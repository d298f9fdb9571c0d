"""When a Numba kernel runs on all of Numba's threads and when on the calling thread alone.

A ``parallel=True`` kernel hands its loop to Numba's worker threads on every call. With the
"workqueue" layer (minicnn/kernels/__init__.py) that is two rounds of waking parked threads, and
on this project's 2-core virtual machines a call that does nothing took ~90-120 us. Most of the
elementwise kernels of a VGG16 pass at batch 1 have less work than that: timed alone (medians of
41 calls, 2 threads, the data in cache), a ReLU over 100,352 float32 values (a 14 x 14 x 512
activation) took 103 us in parallel and 9 us on one thread; over 802,816 (56 x 56 x 256) 235 us
against 68 us; over 3,211,264 (224 x 224 x 64) 555 us against 639 us. In a pass the large arrays come from
memory, not cache, and two threads draw more bandwidth: VGG16's first max-pool backward (3.2 M
values written) took 2.0 ms in parallel and 3.7 ms on one thread (medians of 15 passes). So such
kernels run in parallel from PARALLEL_MIN_ELEMENTS elements (at batch 1 VGG16's blocks 1-2), and
below it as their ``serial`` build. Results are the same bits either way: the kernels that go
through ``sized`` (ReLU, max-pooling) compute each output element on its own.

``serial`` builds are also what each thread of ``gemm.run_parts`` runs (Winograd's small layers,
minicnn/kernels/winograd.py): there a parallel kernel must not run, because the workqueue layer
aborts the process when two Python threads start parallel kernels at once.
"""

from __future__ import annotations

import types

import numba

# Elements (of the largest array a kernel walks) from which a kernel runs on all threads.
PARALLEL_MIN_ELEMENTS = 1 << 20

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
        found = _SERIAL[kernel] = numba.njit(cache=True, nogil=True)(copy)
    return found


def sized(kernel, elements: int):
    """``kernel`` itself for at least PARALLEL_MIN_ELEMENTS elements (and more than one Numba
    thread), else its ``serial`` build."""
    if elements >= PARALLEL_MIN_ELEMENTS and numba.get_num_threads() > 1:
        return kernel
    return serial(kernel)
