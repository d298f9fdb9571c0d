"""Device kernels: the only place where the CPU (Numba) and GPU (CuPy) paths fork.

Each file holds one kind of data movement, its CPU kernel and its GPU kernel side by side, and a
dispatch function that picks one by the array module of its input.

Threads: every layer alternates a Numba parallel kernel with an OpenBLAS matrix product, and both
keep their own thread pools. Numba's default OpenMP layer spins its idle threads, which then fight
OpenBLAS's threads for the cores: on a busy 2-core machine that made a small training step 10-20x
slower, and a VGG16 saliency pass about 2x slower. The "workqueue" layer parks idle threads, so it is
the default here (set NUMBA_THREADING_LAYER to choose another). NOTE: workqueue does not allow two
Python threads to run parallel kernels at the same time.
"""

import os

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"
