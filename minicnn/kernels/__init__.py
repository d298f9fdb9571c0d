"""Device kernels: the only place where the CPU (Numba) and GPU (CuPy) paths fork.

Each file holds one kind of data movement and a dispatch function that picks the CPU kernel or the
GPU path by the array module of its input. The CPU kernels are Numba loops in their own files; the
GPU kernels of im2col, max-pooling and the ReLU backward are CuPy templates in gpu.py, and paste.py
holds its GPU twin beside the CPU one. pointwise.py (1x1 convolutions as plain products) needs no
fork: its products go through gemm.product, which takes either device's arrays. Winograd
(winograd.py, winograd_f4.py, kernel_cache.py), the split products (gemm.py), the threads
(threads.py) and a dense layer's row gradient (dense.py) are CPU code: on the GPU, convolution
takes im2col (1x1: pointwise) and products are CuPy's own.

Importing this package changes nothing in the process: Numba's threading layer is Numba's default
unless the program asks for minicnn's choice (minicnn.tune_process, minicnn/kernels/threads.py).
Compiled kernels are cached in the user's cache folder (minicnn/kernels/compiled.py).
"""
