import os

import numba
import pytest

# Keras 3 must use the PyTorch backend here (no TensorFlow on these machines).
os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture
def two_threads():
    """Two Numba threads (the split count of minicnn/kernels/gemm.py), whatever the machine;
    restored afterwards."""
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() < 2:
        pytest.skip("Numba has a single thread here (NUMBA_NUM_THREADS=1): nothing to split")
    yield
    numba.set_num_threads(before)
