"""minicnn/pages.py: NumPy's huge-page request is off, and glibc keeps freed arrays for reuse, once
``minicnn.tune_process()`` has run, unless the user's own variables say otherwise (that neither
happens without it: tests/test_process.py).

Run in fresh interpreters, NumPy imported first (as a script that imports numpy before minicnn
does): the switch's previous value, returned when it is set again, tells what was in force.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = """
import numpy as np
import minicnn as mc
mc.tune_process()
mc.load(sys.argv[1])
core = getattr(np, "_core", None) or np.core
print(core.multiarray._set_madvise_hugepage(True))
"""


@pytest.mark.parametrize("env, expected", [(None, "False"), ("1", "True"), ("0", "False")])
def test_policy_after_numpy_was_loaded_first(env, expected):
    from minicnn.paths import DEFAULT_MODEL

    environ = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env is not None:
        environ["NUMPY_MADVISE_HUGEPAGE"] = env
    done = subprocess.run([sys.executable, "-c", "import sys" + CODE, str(DEFAULT_MODEL)],
                          capture_output=True, text=True, env=environ, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


FAULTS = """
import resource, sys
import numpy as np
import minicnn
minicnn.tune_process()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for size in (48 << 20, 48 << 20):  # an array freed, then one of the same size: a pass, then the next
    before = faults()
    a = np.empty(size // 4, dtype=np.float32)
    a[:] = 1.0  # write every page
    del a
print(faults() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux")
@pytest.mark.parametrize("user_setting", [None, "131072"])
def test_freed_arrays_are_reused_without_page_faults(user_setting):
    """The second 48 MB array reuses the first one's pages (a handful of faults) under minicnn's heap
    policy; with glibc's own variable set (its 128 KB default threshold), it faults in all ~12,300
    of its 4 KB pages again, as every pass did before."""
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the policy applies to glibc only")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    if user_setting is not None:
        environ["MALLOC_MMAP_THRESHOLD_"] = user_setting
    done = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, env=environ,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    faults = int(done.stdout.split()[-1])
    if user_setting is None:
        assert faults < 100, faults
    else:
        assert faults > 10_000, faults
