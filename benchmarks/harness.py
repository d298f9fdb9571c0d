"""Shared benchmark helpers: side-by-side alternating timing, medians, machine facts, sgemm peak.

The development machines are shared and noisy, so every comparison runs both contenders in the same
process, alternating A, B, A, B, ... after a warm-up, and reports medians and their ratio.
"""

from __future__ import annotations

import os
import platform
import statistics
import time

# tune_process's OpenBLAS setting counts only before NumPy loads OpenBLAS (minicnn/process.py), and
# NumPy is imported just below: without this line OpenBLAS's idle threads spin between products for
# the whole run, taking the cores from the Numba kernels and from the Python threads of the split
# products (a thread hand-off took ~80 us instead of ~10 us).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402

import minicnn  # noqa: E402

# A benchmark owns its process, as the ``minicnn`` command does: it runs with minicnn's process
# settings (minicnn/process.py), which the figures in RESULTS.md and the README were measured with.
# The settings are process-wide, so PyTorch in the same process runs with them too, as it did when
# ``import minicnn`` applied them.
minicnn.tune_process()


def machine() -> str:
    """One line describing the machine, NumPy's BLAS and the thread count."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = "?"
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i['internal_api']} {i['version']}" for i in threadpool_info())
    except ImportError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, numpy {np.__version__} ({blas}), Python {platform.python_version()}"
    )


def sync(result):
    """Wait for GPU work (CuPy or torch) so that wall-clock time includes it."""
    try:
        import cupy

        if isinstance(result, cupy.ndarray):
            cupy.cuda.Device().synchronize()
    except ImportError:
        pass
    return result


def alternate(contenders: dict, repeats: int = 7, warmup: int = 1, clock=time.perf_counter) -> dict:
    """Time each zero-argument callable ``repeats`` times, interleaved; return name -> list of seconds.

    clock: wall-clock by default; ``time.process_time`` counts the CPU time of this process's threads
    only, which other jobs on a shared machine disturb less (meaningful with one thread per pool).
    """
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    return times


def median(values) -> float:
    return statistics.median(values)


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """NumPy's float32 matrix-product rate on an n x n x n problem (best of ``repeats``), in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def conv_flops(net, input_shape) -> float:
    """Multiply-adds x 2 of the forward pass of ``net`` (conv and dense layers) for one image."""
    flops, shape = 0.0, tuple(input_shape)
    for layer in net.layers:
        out = layer.output_shape(shape)
        if layer.kind == "Conv2D":
            kh, kw = layer.kernel_size
            flops += 2.0 * out[0] * out[1] * out[2] * layer.in_channels * kh * kw
        elif layer.kind == "Dense":
            flops += 2.0 * layer.in_features * layer.out_features
        shape = out
    return flops


def table(rows: list[list], header: list[str]) -> str:
    """A Markdown table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
