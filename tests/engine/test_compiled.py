"""minicnn/kernels/compiled.py: compiled kernels are cached in the user's cache folder, never in the
package (where a leftover cache would hide a later editable install), and a second process loads
them instead of compiling.

Each case is a fresh interpreter with its own XDG_CACHE_HOME (a temporary folder) and no
NUMBA_CACHE_DIR. Numba's dispatchers count, per signature, the compilations loaded from the cache
(``stats.cache_hits``) and those compiled and saved (``stats.cache_misses``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import minicnn

PACKAGE = Path(minicnn.__file__).resolve().parent

SCRIPT = r"""
import json
import numpy as np
import numba
from minicnn.kernels import compiled, gemm, im2col, maxpool, relu, threads, winograd
from minicnn.layers.conv import Conv2D

before = compiled.kernels_compiled()
numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
rng = np.random.default_rng(0)
x = rng.standard_normal((1, 8, 12, 12)).astype(np.float32)
y = relu.relu_forward(x)  # the serial build (few elements)
relu._relu_forward_cpu(x.reshape(-1), np.empty(x.size, np.float32))  # the parallel build
maxpool.maxpool_forward(y, 2, 2, 2)
conv = Conv2D(8, 4, 3, padding=1)
conv.init_params(rng)
conv.forward(x)
dispatchers = [d for m in (im2col, maxpool, relu, winograd) for d in vars(m).values()
               if isinstance(d, numba.core.registry.CPUDispatcher)] + list(threads._SERIAL.values())
hits = sum(sum(d.stats.cache_hits.values()) for d in dispatchers)
misses = sum(sum(d.stats.cache_misses.values()) for d in dispatchers)
paths = sorted({d.stats.cache_path for d in dispatchers})
print(json.dumps({"before": before, "after": compiled.kernels_compiled(), "hits": hits,
                  "misses": misses, "paths": paths, "folder": str(compiled.cache_dir())}))
"""


def _package_files() -> set[str]:
    """Every file under the package but Python's own bytecode (which pip records and removes)."""
    return {str(p) for p in PACKAGE.rglob("*") if p.is_file() and p.suffix != ".pyc"}


def _run(cache_home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env["XDG_CACHE_HOME"] = str(cache_home)
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_kernels_are_cached_outside_the_package_and_reused(tmp_path):
    files = _package_files()
    first = _run(tmp_path)
    folder = Path(first["folder"])
    assert folder.is_relative_to(tmp_path / "minicnn" / "numba")
    assert all(Path(p).is_relative_to(folder) for p in first["paths"]), first["paths"]
    assert (first["before"], first["after"]) == (False, True)
    assert first["misses"] > 0 and first["hits"] == 0, first
    saved = sorted(p.name for p in folder.rglob("*.nbi"))
    assert any(name.startswith("relu._relu_forward_cpu-") for name in saved), saved
    assert any(name.startswith("relu._relu_forward_cpu_serial-") for name in saved), saved
    assert _package_files() == files  # nothing written into the package

    second = _run(tmp_path)
    # nothing compiled again (a helper compiled for its caller's sake is not even loaded: the
    # caller's cached code holds it), every kernel run loaded from the folder
    assert second["before"] and second["misses"] == 0 and second["hits"] >= 4, second
    assert _package_files() == files


def test_an_unwritable_cache_folder_only_costs_compilation(tmp_path):
    """A cache folder that cannot be made (a file where the folder should be): kernels still run."""
    (tmp_path / "minicnn").write_text("not a folder")
    got = _run(tmp_path)
    assert got["misses"] > 0 and not got["after"]
