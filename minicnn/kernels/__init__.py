"""Device kernels: the only place where the CPU (Numba) and GPU (CuPy) paths fork.

Each file holds one kind of data movement and a dispatch function that picks the CPU kernel or the
GPU kernel by the array module of its input. The two sit side by side in one file where both
exist (im2col.py, maxpool.py, relu.py, paste.py); the GPU twins of the elementwise kernels are
CuPy templates in gpu.py; Winograd's transforms, the split products (gemm.py), the threads
(threads.py), the transformed-kernel cache (kernel_cache.py) and a dense layer's row gradient
(dense.py) are CPU code, and on the GPU the same steps are CuPy's own array operations.

Importing this package changes nothing in the process: Numba's threading layer is Numba's default
unless the program asks for minicnn's choice (minicnn.tune_process, minicnn/kernels/threads.py).
Compiled kernels are cached in the user's cache folder (minicnn/kernels/compiled.py).
"""
