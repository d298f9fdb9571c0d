"""minicnn/kernels/threads.py: Numba's threading layer that ``minicnn.tune_process()`` chooses (TBB
where installed, never OpenMP, the user's NUMBA_THREADING_LAYER respected, fork-safe), and kernels
that run on all of Numba's threads or on the calling thread by size: the choice, and both builds of
each kernel that makes it against an independent reference (NumPy's own operations, the naive loops
of tests/naive.py). Elsewhere the tests' arrays are small, so without ``both_builds`` the parallel
builds would go untested."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import naive
import numba
import numpy as np
import pytest

from minicnn.kernels import maxpool, relu, threads


@pytest.fixture(params=["serial", "parallel"])
def both_builds(request, monkeypatch, two_threads):
    """Runs the test once with every sized kernel on one thread and once on all (two) threads."""
    least = 0 if request.param == "parallel" else 1 << 62
    monkeypatch.setattr(threads, "PARALLEL_MIN_ELEMENTS", dict.fromkeys(("workqueue", "tbb"), least))
    return request.param


def test_sized_picks_by_elements_and_threads(monkeypatch, two_threads):
    kernel = relu._relu_forward_cpu
    least = threads.PARALLEL_MIN_ELEMENTS[threads.threading_layer()]
    assert threads.sized(kernel, least) is kernel
    assert threads.sized(kernel, least - 1) is threads.serial(kernel)
    assert not threads.serial(kernel).targetoptions.get("parallel")
    numba.set_num_threads(1)
    assert threads.sized(kernel, 1 << 40) is threads.serial(kernel)


def test_relu_masks(both_builds):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    y = relu.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    dy = rng.standard_normal(x.shape).astype(np.float32)
    for mask_forward in (False, True):
        for rectify in (False, True):
            keep = np.ones(x.shape, bool)
            if mask_forward:
                keep &= y > 0
            if rectify:
                keep &= dy > 0
            dx = relu.relu_backward(dy, y, mask_forward, rectify)
            np.testing.assert_array_equal(dx, np.where(keep, dy, 0), err_msg=f"{mask_forward} {rectify}")
            # the mask y > 0 as booleans (keep="input-gradient") in place of y: the same bits
            from_mask = relu.relu_backward(dy, y > 0, mask_forward, rectify)
            assert from_mask.dtype == dy.dtype and from_mask.tobytes() == dx.tobytes()


@pytest.mark.parametrize("kernel,stride", [((2, 2), 2), ((3, 3), 2)], ids=["vgg", "overlapping"])
def test_maxpool(both_builds, kernel, stride):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, (2, 3, 7, 9)).astype(np.float64)  # ties in most windows
    kh, kw = kernel
    y, switches = maxpool.maxpool_forward(x, kh, kw, stride)
    y_ref, switches_ref = naive.maxpool_forward(x, kh, kw, stride)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(switches, switches_ref)
    dy = rng.standard_normal(y.shape)
    dx = maxpool.maxpool_backward(dy, switches, x.shape, kh, kw, stride)
    np.testing.assert_array_equal(dx, naive.maxpool_backward(dy, switches_ref, x.shape, kw, stride))


def _layer_in_fresh_process(**variables) -> list[str]:
    """[libtbb mapped after ``minicnn.tune_process()`` and before any kernel ran ("True"/"False"),
    the threading layer Numba then runs] in a new interpreter whose environment has ``variables``
    and no NUMBA_THREADING_LAYER unless given."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"} | variables
    script = (
        "import minicnn\n"
        "minicnn.tune_process()\n"
        "mapped = 'libtbb.so.12' in open('/proc/self/maps').read()\n"
        "from minicnn.kernels import threads\n"
        "print(mapped, threads.threading_layer())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def _tbb_installed() -> bool:
    try:
        importlib.metadata.distribution("tbb")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/maps: Linux")
def test_the_layer_is_tbb_where_installed_and_loaded_before_any_kernel():
    """TBB where the package is installed (its library loaded by path by ``tune_process``, as a
    virtual environment needs), else workqueue; OpenMP never."""
    mapped, layer = _layer_in_fresh_process()
    expected = "tbb" if _tbb_installed() else "workqueue"
    assert (mapped, layer) == (str(expected == "tbb"), expected)


def test_the_users_threading_layer_is_kept():
    assert _layer_in_fresh_process(NUMBA_THREADING_LAYER="workqueue")[1] == "workqueue"


FORK = """
import multiprocessing
import numba, numpy as np
import minicnn
minicnn.tune_process()
from minicnn.kernels import relu

def child(x, queue):
    y = np.empty_like(x)
    relu._relu_forward_cpu(x, y)  # the parallel build
    queue.put(y.tolist())

if __name__ == "__main__":
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    x = np.linspace(-1, 1, 1000, dtype=np.float32)
    y = np.empty_like(x)
    relu._relu_forward_cpu(x, y)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=child, args=(x, queue))
    process.start()
    got = queue.get(timeout=60)
    process.join(timeout=60)
    print(process.exitcode, numba.threading_layer(), np.array_equal(got, np.maximum(x, 0)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork: Linux")
def test_a_forked_child_runs_parallel_kernels(tmp_path):
    """multiprocessing forks by default on Linux. After the parent has run a parallel kernel, GNU
    OpenMP (Numba's "omp" layer) would have the child terminated at its first one ("fork() called
    from a process already using GNU OpenMP"): the layer ``tune_process`` chooses must not."""
    script = tmp_path / "fork.py"
    script.write_text(FORK)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    exitcode, layer, equal = done.stdout.split()
    assert (exitcode, equal) == ("0", "True") and layer != "omp"
