"""``import minicnn`` and its API change nothing in the host process; ``minicnn.tune_process()`` and
the ``minicnn`` command apply minicnn's process settings (minicnn/process.py).

Each case runs in a fresh interpreter that records, before minicnn is imported and after a saliency
map has been computed through the API (parallel Numba kernels and split BLAS products ran):

- the environment (os.environ);
- Numba's threading-layer configuration, and the layer that started, against the layer a process
  without minicnn starts (Numba's default choice);
- NumPy's huge-page request (its getter);
- glibc's malloc: every ``mallopt`` looked up through ctypes (minicnn's only route to the C
  library), and the allocator's behaviour: a freed 48 MB array followed by one of the same size
  faults in all ~12,300 of its 4 KB pages again under glibc's defaults (the mmap threshold never
  exceeds 32 MB), a handful when freed arrays are kept (huge pages off during the count, which
  would otherwise make it small either way);
- the BLAS libraries' thread counts (threadpoolctl).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from minicnn.paths import DEFAULT_MODEL

LINUX_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

SCRIPT = r"""
import ctypes, json, os, resource, sys

looked_up = []
_getattr, _getitem = ctypes.CDLL.__getattr__, ctypes.CDLL.__getitem__
def _spy_getattr(self, name):
    looked_up.append(name)
    return _getattr(self, name)
def _spy_getitem(self, name):
    looked_up.append(name)
    return _getitem(self, name)
ctypes.CDLL.__getattr__, ctypes.CDLL.__getitem__ = _spy_getattr, _spy_getitem

import numpy as np
import numba
import threadpoolctl

def reuse_faults():
    # 4 KB pages only (NumPy's huge-page request off meanwhile, then restored), so that the count
    # tells malloc's reuse apart from the kernel's huge pages
    core = getattr(np, "_core", None) or np.core
    huge = core.multiarray._set_madvise_hugepage(False)
    faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(2):  # an array freed, then one of the same size
        before = faults()
        a = np.empty((48 << 20) // 4, dtype=np.float32)
        a[:] = 1.0
        del a
    core.multiarray._set_madvise_hugepage(huge)
    return faults() - before

def state():
    core = getattr(np, "_core", None) or np.core
    return {
        "environ": dict(os.environ),
        "layer_config": [numba.config.THREADING_LAYER, list(numba.config.THREADING_LAYER_PRIORITY)],
        "huge_pages": bool(core.multiarray._get_madvise_hugepage()),
        "reuse_faults": reuse_faults(),
        "blas": {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info()
                 if i["user_api"] == "blas"},
        "tbb_mapped": "libtbb" in open("/proc/self/maps").read(),
        "mallopt": "mallopt" in looked_up,
    }

mode = sys.argv[1]
before = state()
if mode == "cli":
    from minicnn.cli.main import main
    assert main(["info", sys.argv[2]]) == 0
else:
    import minicnn as mc
    if mode == "tuned":
        mc.tune_process()
    from minicnn.kernels import gemm
    split = []  # True for each product or Winograd layer run in parts, BLAS on one thread
    _run_parts = gemm.run_parts
    gemm.run_parts = lambda parts: split.append(_run_parts(parts)) or split[-1]
    net = mc.Sequential([
        mc.Conv2D(3, 32, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2),
        mc.Conv2D(32, 64, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2),
        mc.Flatten(), mc.Dense(64 * 16 * 16, 256), mc.ReLU(), mc.Dense(256, 10),
    ], seed=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    heat = mc.saliency(net, x, progress=False)
    assert heat.shape == (2, 64, 64) and np.isfinite(heat).all() and heat.max() > 0
    assert any(split), split
layer = None if mode == "cli" else numba.threading_layer()  # started by the saliency map's kernels
print(json.dumps({"before": before, "after": state(), "layer": layer}))
"""

NUMBA_DEFAULT = r"""
import numba, numpy as np
@numba.njit(parallel=True)
def bump(x):
    for i in numba.prange(x.size):
        x[i] += 1
bump(np.zeros(16))
print(numba.threading_layer(), "libtbb" in open("/proc/self/maps").read())
"""

# the user's own variables for these settings, removed so that the defaults are seen
CLEARED = (
    "OPENBLAS_THREAD_TIMEOUT", "NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY",
    "NUMPY_MADVISE_HUGEPAGE", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES",
)  # fmt: skip


def _environ() -> dict:
    return {k: v for k, v in os.environ.items() if k not in CLEARED}


def _run(mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(DEFAULT_MODEL)],
        capture_output=True, text=True, env=_environ(), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def numba_default() -> list[str]:
    """[threading layer, "True"/"False" libtbb mapped] of a process that never imports minicnn."""
    done = subprocess.run([sys.executable, "-c", NUMBA_DEFAULT], capture_output=True, text=True,
                          env=_environ(), timeout=120, check=True)  # fmt: skip
    return done.stdout.split()


pytestmark = pytest.mark.skipif(not LINUX_GLIBC, reason="/proc/self/maps and glibc's malloc: Linux")


def test_import_and_api_change_nothing(numba_default):
    got = _run("api")
    before, after = got["before"], got["after"]
    assert after["environ"] == before["environ"]
    assert after["layer_config"] == before["layer_config"]  # Numba's own defaults, untouched
    assert [got["layer"], str(after["tbb_mapped"])] == numba_default  # Numba's own choice
    assert after["huge_pages"] == before["huge_pages"]
    assert not after["mallopt"]
    assert after["reuse_faults"] > 10_000, after["reuse_faults"]  # glibc's default threshold
    assert before["reuse_faults"] > 10_000, before["reuse_faults"]
    # split products set BLAS to one thread and restore its count (libraries loaded since: not compared)
    assert before["blas"] and {k: after["blas"][k] for k in before["blas"]} == before["blas"]


def _assert_tuned(got: dict) -> None:
    before, after = got["before"], got["after"]
    assert after["environ"] == before["environ"] | {"OPENBLAS_THREAD_TIMEOUT": "4"}
    assert after["layer_config"][1] == ["tbb", "workqueue", "omp"]
    assert not after["huge_pages"] and before["huge_pages"] in (True, False)
    assert after["mallopt"]
    assert after["reuse_faults"] < 100, after["reuse_faults"]
    assert {k: after["blas"][k] for k in before["blas"]} == before["blas"]


def test_tune_process_applies_the_settings():
    got = _run("tuned")
    _assert_tuned(got)
    assert got["layer"] in ("tbb", "workqueue")


def test_the_command_applies_the_settings():
    _assert_tuned(_run("cli"))
