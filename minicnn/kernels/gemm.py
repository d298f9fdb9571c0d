"""Matrix products on the CPU with one set of threads: BLAS single-threaded, the work split by us.

Why: a convolution pass alternates Numba kernels (Winograd transforms, im2col, ReLU, pooling) with
BLAS products. With both libraries multi-threaded, OpenBLAS's threads stay awake after each product
while Numba's start, and where there are few cores the two pools take turns on them, slowing both
the products and the kernels between them (benchmarks/RESULTS.md, "Batch 1" and the per-layer
figures of benchmarks/vgg16_layers_cpu.py). So the products run here with OpenBLAS set to one
thread, split into as many independent parts as Numba has threads
(the same count, so ``NUMBA_NUM_THREADS=1`` in a job worker makes every product single-threaded),
each part computed by a BLAS call on its own Python thread (NumPy releases the GIL inside BLAS).
Nothing else runs while a product runs, and BLAS's thread count is restored afterwards, so NumPy
code of the caller's own keeps its setting.

How a product is split: a stack of products ``a (B, M, K) @ b (B, K, N)`` (Winograd's 16 or 36)
by the stack; a single product ``a (M, K) @ b (K, N)`` by the rows of a when a is the larger
operand, else by the columns of b, so that each thread reads its own part of the larger one and all
of the smaller (a dense layer's backward at batch 8, dy (8, 4096) @ W (4096, 25088), split by the
rows of dy, had each thread stream all 411 MB of W). Every output element is computed by
one BLAS call from the same operands as ``np.matmul`` would use, so the result differs from
``np.matmul``'s only as two BLAS blockings may round differently (tests/engine/test_gemm.py). A
single product is cut into as many parts as the machine has cores whatever the thread count, and
on one thread the same parts run in turn (BLAS on one thread): the bits do not depend on how many
threads ran them, so a job worker on one thread computes what its parent computes on two.

``run_parts`` uses the same threads for whole pieces of work that each call BLAS and Numba kernels
compiled without threads (Winograd's small layers, one run of steps per thread:
minicnn/kernels/winograd.py): one hand-off per layer instead of three per step, and each thread
reads back from its own cache the tiles it has just transformed.

threadpoolctl (the scikit-learn project's library) finds NumPy's BLAS and sets its thread count;
where it finds none (or is missing), products fall back to a plain ``np.matmul``.
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from minicnn.backend import get_xp
from minicnn.kernels import relu

# Below this many multiply-adds a product takes less time than handing parts to threads: plain np.matmul.
MIN_SPLIT_WORK = 1 << 20

_state: dict = {}
_lock = threading.Lock()
_owner = [os.getpid()]  # the process that made _state and _lock


def _this_process() -> None:
    """Start the pool and the lock afresh in a forked child: the parent's pool threads do not exist
    there (a submitted part would wait forever) and the lock may be held by a thread that is not
    there. Checked on each call rather than by a fork handler, so that importing this module
    registers nothing with the process."""
    global _lock
    if _owner[0] != os.getpid():
        _state.pop("pool", None)
        _state.pop("workers", None)
        _lock = threading.Lock()
        _owner[0] = os.getpid()


def _blas_controllers() -> list:
    """threadpoolctl's controllers of the BLAS libraries loaded in this process (found once)."""
    if "blas" not in _state:
        try:
            from threadpoolctl import ThreadpoolController

            found = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
        except Exception:  # noqa: BLE001 - no threadpoolctl or an unknown BLAS: plain np.matmul
            found = []
        _state["blas"] = found
    return _state["blas"]


def _pool(workers: int) -> ThreadPoolExecutor:
    """A persistent pool of ``workers`` threads (the calling thread does one part itself)."""
    pool = _state.get("pool")
    if pool is None or _state.get("workers") != workers:
        if pool is not None:
            pool.shutdown(wait=True)
        pool = _state["pool"] = ThreadPoolExecutor(workers, thread_name_prefix="minicnn-gemm")
        _state["workers"] = workers
    return pool


def _parts(count: int, threads: int) -> list[tuple[int, int]]:
    """[start, stop) ranges cutting ``count`` items into ``threads`` near-equal parts."""
    cuts = [count * i // threads for i in range(threads + 1)]
    return [(cuts[i], cuts[i + 1]) for i in range(threads) if cuts[i] < cuts[i + 1]]


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, bias=None,
           rectify: bool = False) -> np.ndarray:  # fmt: skip
    """``np.matmul(a, b, out=out)`` for NumPy arrays, computed as described in the module docstring.

    a (M, K) and b (K, N), or stacks a (B, M, K) and b (B, K, N) (either may also be 2-D, shared by
    the stack); float32 or float64; out: a C-contiguous array of the result's shape and dtype, or None.
    bias: None, or (M,) added to every column of every result right after each part's product, while
    that part is still in cache (a convolution's bias). rectify: then max(v, 0) on each part, in the
    same pass (a ReLU fused into the layer: minicnn/kernels/relu.py). Returns out (or a new array).
    """
    if out is None:
        stack = a.shape[0] if a.ndim == 3 else b.shape[0] if b.ndim == 3 else None
        rows = (a.shape[-2], b.shape[-1])
        out = np.empty(rows if stack is None else (stack, *rows), dtype=np.result_type(a, b))
    if b.ndim == 3 and a.ndim == 2 and b.shape[0] == 1:  # one image: the 2-D product
        matmul(a, b[0], out[0], bias, rectify)
        return out
    threads = numba.get_num_threads()
    work = a.shape[-2] * a.shape[-1] * b.shape[-1] * (out.shape[0] if out.ndim == 3 else 1)
    if work < MIN_SPLIT_WORK or (threads < 2 and out.ndim == 3):
        # small, or a stack on one thread: one call, with BLAS on one thread all the same (a
        # multi-threaded BLAS may split the sums of a small product, a matrix-vector product's among
        # others, and round otherwise than a job worker's one-thread BLAS does)
        _in_turn([(a, b, out, *_epilogue(bias, rectify))])
        return out
    extra = _epilogue(bias, rectify)
    if a.ndim == 3 or b.ndim == 3:  # each matrix of a stack is one BLAS call however it is split
        stack = out.shape[0]
        jobs = [(a[i:j] if a.ndim == 3 else a, b[i:j] if b.ndim == 3 else b, out[i:j], *extra)
                for i, j in _parts(stack, threads)]  # fmt: skip
        if not run_parts([functools.partial(_product, *job) for job in jobs]):
            _product(a, b, out, bias, rectify)  # no BLAS control, or another caller's parts running
        return out
    return _split_2d(a, b, out, bias, rectify, threads)


def _split_2d(a, b, out, bias, rectify: bool, threads: int):
    """out = a @ b (+ bias) for 2-D a (M, K) and b (K, N), cut into parts that do not depend on the
    thread count: by rows of a where a is the larger (each part reads its rows and all of b), else by
    columns of b, into as many parts as the machine has cores (Numba's count, which a job worker's
    NUMBA_NUM_THREADS=1 does not change). BLAS picks its blocking and kernels by the shape of each
    call, so a split that followed the thread count would give other float32 bits on one thread than
    on two; these parts are the same calls on any number of threads (``threads`` of them run at once,
    each running its share in turn)."""
    count = numba.config.NUMBA_DEFAULT_NUM_THREADS
    if a.size >= b.size and a.shape[0] >= count:
        cuts = _parts(a.shape[0], count)
        jobs = [
            (a[i:j], b, out[i:j], *_epilogue(None if bias is None else bias[i:j], rectify)) for i, j in cuts
        ]
    else:  # b is the larger (a dense layer's backward, im2col's columns), or a has too few rows
        jobs = [(a, b[:, i:j], out[:, i:j], *_epilogue(bias, rectify)) for i, j in _parts(b.shape[1], count)]
    shares = [jobs[t::threads] for t in range(min(threads, len(jobs)))]
    if not run_parts([functools.partial(_run_jobs, share) for share in shares]):
        _in_turn(jobs)  # one thread, no BLAS control, or another caller's parts running
    return out


def _epilogue(bias, rectify: bool) -> tuple:
    """The arguments of ``_product`` after (a, b, out): none where there is no epilogue."""
    return () if bias is None and not rectify else (bias, rectify)


def _run_jobs(jobs) -> None:
    """``_product`` of each (a, b, out[, bias, rectify]) in turn."""
    for job in jobs:
        _product(*job)


def _in_turn(jobs) -> None:
    """The jobs one after another on this thread, with BLAS on one thread as in ``run_parts`` (a
    multi-threaded BLAS may split a product's sums, a matrix-vector product's among others, and
    round otherwise). Where another caller's parts hold the BLAS setting, BLAS is left as it is."""
    _this_process()
    controllers = _blas_controllers()
    if not controllers or not _lock.acquire(blocking=False):
        return _run_jobs(jobs)
    try:
        before = [c.num_threads for c in controllers]
        for c in controllers:
            c.set_num_threads(1)
        try:
            _run_jobs(jobs)
        finally:
            for c, n in zip(controllers, before):
                c.set_num_threads(n)
    finally:
        _lock.release()


def product(a, b, out=None, bias=None, rectify: bool = False):
    """a @ b for NumPy or CuPy arrays (2-D, or a stack as in ``matmul``), into ``out`` if given (it may
    be a strided view): NumPy's through ``matmul``, CuPy's as is (via a temporary when ``out`` is
    given). Every product of a layer goes through here, so that none wakes BLAS's own threads: a
    product run with OpenBLAS's threads takes no longer alone, but the woken threads then slow the
    convolutions that follow (benchmarks/RESULTS.md, "Figures moved out of minicnn's docstrings").
    bias: None, or (M,) added to every column; rectify: max(v, 0) after it (as in ``matmul``).
    Returns the product.
    """
    if get_xp(a) is np:
        return matmul(a, b, out=out, bias=bias, rectify=rectify)
    result = a @ b
    if rectify:
        relu.add_bias_rectify(result, bias)
    elif bias is not None:
        result += bias[:, None]
    if out is None:
        return result
    out[...] = result
    return out


def run_parts(parts) -> bool:
    """Run the callables ``parts`` (no arguments) at once, one per thread, the calling thread running
    the first, with BLAS single-threaded meanwhile, as ``matmul`` runs its parts; they may call
    ``np.matmul`` and Numba kernels compiled without threads (a parallel Numba kernel must not run on
    two threads at once: the "workqueue" layer aborts, minicnn/kernels/__init__.py).

    Returns True once all have run (an exception in a part is raised here, after the others end), or
    False, having run none, where parts cannot run at once: fewer than two parts or Numba threads,
    no BLAS control, or another caller's parts still running. Then the caller does the work its
    usual way.
    """
    _this_process()
    threads = numba.get_num_threads()
    if len(parts) < 2 or threads < 2 or not _blas_controllers() or not _lock.acquire(blocking=False):
        return False
    try:
        controllers = _blas_controllers()
        before = [c.num_threads for c in controllers]
        for c in controllers:
            c.set_num_threads(1)
        try:
            futures = [_pool(threads - 1).submit(part) for part in parts[1:]]
            try:
                parts[0]()
            finally:
                for f in futures:
                    f.exception()  # wait for every part before the first error is raised
            for f in futures:
                f.result()
        finally:
            for c, n in zip(controllers, before):
                c.set_num_threads(n)
    finally:
        _lock.release()
    return True


def _product(a, b, out, bias=None, rectify: bool = False):
    """out = a @ b (+ bias (M,) on every column, then max(v, 0) if ``rectify``) for one part; out may
    be a strided view (columns of a 2-D result), which NumPy writes in place. Returns out."""
    np.matmul(a, b, out=out)
    if rectify:
        relu.add_bias_rectify(out, bias)
    elif bias is not None:
        out += bias[:, None]
    return out
