"""Winograd layers split between threads by runs of steps (minicnn/kernels/winograd.py,
``_thread_steps``).

Each thread runs transform, GEMM and transform on its own run of the step-by-step path's steps, so
every GEMM has the same columns as there and the results must be the same bits: the reference is
the same layer done step by step (every kernel shared by the threads; itself checked against naive
loops and PyTorch in test_winograd.py / test_winograd_f4.py), compared exactly, and the naive loops
for the input gradient. Bit-equality is what keeps a dataset job's results independent of its
shard size and process count (tests/jobs/test_sanity_job.py). In the input gradient neighbouring
steps add into two shared rows of dx: each thread runs its run last step first, and starts the first
step of its run only once the thread before it has done its last, so that the two steps at a
boundary never run at once (``test_adjoining_steps_never_overlap``); a shared row then gets the same
two addends in one order or the other, the same bits. Each test also checks that the split really
ran (``gemm.run_parts`` said True), so that it cannot end up comparing the step-by-step path with
itself.
"""

from __future__ import annotations

import threading
import time

import naive
import numba
import numpy as np
import pytest
from support import assert_close

from minicnn.kernels import gemm, winograd, winograd_f4

LOWERINGS = {"F(2x2)": winograd, "F(4x4)": winograd_f4}


@pytest.fixture
def splits(monkeypatch):
    """Counts the row splits that ran: {"ran": n} (run_parts also runs the parts of split GEMMs)."""
    count = {"ran": 0}
    run_parts = gemm.run_parts

    def counted(parts):
        ran = run_parts(parts)
        count["ran"] += ran and all(getattr(part, "func", None).__name__ == "own_run" for part in parts)
        return ran

    monkeypatch.setattr(gemm, "run_parts", counted)
    return count


# n, c, h, w, o: one image with the split inside it (dx rows shared across the threads' boundary);
# three images, where the boundary falls inside the second; sides that leave tiles over the edge.
SHAPES = [(1, 3, 19, 13, 4), (3, 2, 9, 11, 5), (2, 4, 14, 14, 3)]


@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("lowering", list(LOWERINGS))
def test_split_equals_step_by_step_bit_for_bit(two_threads, splits, monkeypatch, lowering, shape, padding):
    module = LOWERINGS[lowering]
    monkeypatch.setattr(winograd, "WINOGRAD_TILE_ELEMENTS", 1)  # one tile row per step: 4+ steps
    n, c, h, w, o = shape
    rng = np.random.default_rng(h * 10 + padding)
    x, k, b = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, 3, 3)), rng.standard_normal(o)
    u = module.transform_kernel(k)
    y = module.winograd_conv(x, u, b, padding)
    dy = rng.standard_normal(y.shape)
    dx = module.winograd_conv_adjoint(dy, u, padding)
    assert splits["ran"] == (2 if lowering == "F(4x4)" else 1), "split by steps (F(2x2) forward only)"
    monkeypatch.setattr(winograd, "ROWS_SPLIT_MAX_U_BYTES", -1)  # step by step
    assert_close(y, module.winograd_conv(x, u, b, padding), 0, f"{lowering} forward, split", atol=0)
    assert_close(dx, module.winograd_conv_adjoint(dy, u, padding), 0, f"{lowering} dx, split", atol=0)
    assert splits["ran"] == (2 if lowering == "F(4x4)" else 1), "the reference did not split"
    assert_close(dx, naive.conv2d_backward(dy, x, k, 1, padding)[0], 1e-12, f"{lowering} dx, naive loops")


def test_float32_bits_too(two_threads, splits, monkeypatch):
    """float32, F(4x4), a VGG-like block1 layer at batch 1 with the default step budget (14 steps)."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 16, 224, 224)).astype(np.float32)
    u = winograd_f4.transform_kernel(rng.standard_normal((16, 16, 3, 3)).astype(np.float32))
    y = winograd_f4.winograd_conv(x, u, None, 1)
    dx = winograd_f4.winograd_conv_adjoint(y, u, 1)
    assert splits["ran"] == 2
    monkeypatch.setattr(winograd, "ROWS_SPLIT_MAX_U_BYTES", -1)
    assert np.array_equal(y, winograd_f4.winograd_conv(x, u, None, 1))
    assert np.array_equal(dx, winograd_f4.winograd_conv_adjoint(y, u, 1))


def test_small_layers_only(two_threads, splits):
    """U above ROWS_SPLIT_MAX_U_BYTES (VGG16's 256 -> 256 layers and deeper), or fewer than two steps
    per thread: step by step."""
    rng = np.random.default_rng(0)
    u_big = np.zeros((36, 256, 256), np.float32)  # 9.4 MB
    assert u_big.nbytes > winograd.ROWS_SPLIT_MAX_U_BYTES
    winograd_f4.winograd_conv(rng.standard_normal((4, 256, 56, 56)).astype(np.float32), u_big, None, 1)
    u_small = winograd_f4.transform_kernel(rng.standard_normal((2, 2, 3, 3)))
    winograd_f4.winograd_conv(rng.standard_normal((1, 2, 16, 16)), u_small, None, 1)  # one step
    assert splits["ran"] == 0
    assert winograd._thread_steps(14, 4) == [[0, 4], [8, 12]]  # 4 steps: two per thread
    assert winograd._thread_steps(12, 4) is None  # 3 steps


@pytest.mark.parametrize("module", [winograd, winograd_f4])
def test_transforms_compiled_once_for_both_paths(module):
    """Each transform's loops are one kernel without threads and without the GIL (``channels``, what
    ``gemm.run_parts``'s threads run: a parallel kernel run on two threads at once aborts the
    process), which the threaded kernel calls on ranges of channels: the same bits for any number of
    ranges, and one build of the loops for both."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 9, 11)).astype(np.float32)
    tiles_h, tiles_w = module.tile_counts(9, 11)
    a = 16 if module is winograd else 36
    for transform in (module.INPUT, module.OUTPUT, module.OUTPUT_GRADIENT, module.INPUT_GRADIENT):
        assert transform.threaded.targetoptions.get("parallel")
        assert not transform.channels.targetoptions.get("parallel")
        assert transform.channels.targetoptions.get("nogil")
    results = []
    for parts in (None, 1, 2, 3, 7):
        v = np.full((a, 5 * 2 * tiles_h * tiles_w), np.nan, np.float32)
        dx = np.zeros_like(x)
        args = (x, 1, tiles_h, tiles_w, 0, 2 * tiles_h, v)
        if parts is None:
            module.input_channels(*args, 0, 5)
            module.input_gradient_channels(v, 1, tiles_h, tiles_w, 0, 2 * tiles_h, dx, 0, 5)
        else:
            module.input_tiles(*args, parts)
            module.input_gradient_tiles(v, 1, tiles_h, tiles_w, 0, 2 * tiles_h, dx, parts)
        results.append((v, dx))
    assert not np.isnan(results[0][0]).any() and np.abs(results[0][1]).max() > 0
    for v, dx in results[1:]:
        assert np.array_equal(v, results[0][0]) and np.array_equal(dx, results[0][1])
    # one build for both paths: the threaded kernel passes the channel range as Python's ints are typed
    assert {sig[-2:] for sig in module.input_channels.signatures} == {(numba.int64, numba.int64)}


def test_run_parts(two_threads):
    """All parts run, on different threads; a part's error is raised once every part has ended; a
    single part is not run (the caller does the work); BLAS's thread count is restored."""
    controllers = gemm._blas_controllers()
    if not controllers:
        pytest.skip("threadpoolctl finds no BLAS here: run_parts declines")
    before = [c.num_threads for c in controllers]
    seen, done = [], threading.Event()

    def record():
        seen.append((threading.get_ident(), [c.num_threads for c in controllers]))

    assert gemm.run_parts([record, record])
    assert len({ident for ident, _ in seen}) == 2
    assert all(threads == [1] * len(controllers) for _, threads in seen)
    assert [c.num_threads for c in controllers] == before

    def fail():
        raise ValueError("part failed")

    def slow():
        threading.Event().wait(0.2)
        done.set()

    with pytest.raises(ValueError, match="part failed"):
        gemm.run_parts([fail, slow])
    assert done.is_set()
    assert [c.num_threads for c in controllers] == before
    assert not gemm.run_parts([record])
    assert len(seen) == 2


def test_adjoining_steps_never_overlap(two_threads):
    """``_run_steps(adjoining=True)``: every step runs once, on the threads (none is left for after),
    and the two steps at the boundary of the threads' runs (3 and 4 of 0-7) never run at once, even
    where the first thread's first job (step 3, its run done last step first) is slow; without the
    wait, step 4 (the second thread's last job) would start while step 3 sleeps."""
    if not gemm._blas_controllers():
        pytest.skip("threadpoolctl finds no BLAS here: run_parts declines, nothing is split")
    log, lock = [], threading.Lock()

    def step(r0, shared, scratch):
        start = time.perf_counter()
        if r0 == 3:
            time.sleep(0.3)
        with lock:
            log.append((r0, shared, threading.get_ident(), start, time.perf_counter()))

    winograd._run_steps(8, 1, step, lambda: None, split=True, adjoining=True)
    assert sorted(r0 for r0, *_ in log) == list(range(8))
    assert not any(shared for _, shared, *_ in log), "a step was left for the shared path"
    when = {r0: (start, end) for r0, _, _, start, end in log}
    assert when[4][0] >= when[3][1], "step 4 started before step 3 (its neighbour) had ended"
    threads = {r0: ident for r0, _, ident, *_ in log}
    assert threads[3] != threads[4] and len(set(threads.values())) == 2
    order = [r0 for r0, *_ in sorted(log, key=lambda entry: entry[3]) if threads[r0] == threads[0]]
    assert order == [3, 2, 1, 0], "the first thread runs its steps last first"
