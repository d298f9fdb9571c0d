"""minicnn/pages.py: NumPy's huge-page request is off once the engine loads, unless the user says.

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
mc.load(sys.argv[1])  # the loaders reach the engine's array code (minicnn.backend)
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
