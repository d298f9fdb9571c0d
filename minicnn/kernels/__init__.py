"""Device kernels: the only place where the CPU (Numba) and GPU (CuPy) paths fork.

Each file holds one kind of data movement, its CPU kernel and its GPU kernel side by side, and a
dispatch function that picks one by the array module of its input.

Threads: every layer alternates Numba parallel kernels with BLAS products split over minicnn's own
threads (minicnn/kernels/gemm.py). Numba's threading layer is TBB where the ``tbb`` package is
installed, else "workqueue", never OpenMP (whose idle threads spin while the product threads need
the cores): minicnn/kernels/threads.py says why, with measurements. NUMBA_THREADING_LAYER, where
set, chooses instead.
"""

from minicnn.kernels.threads import choose_threading_layer

choose_threading_layer()
