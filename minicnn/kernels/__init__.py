"""Device kernels: the only place where the CPU (Numba) and GPU (CuPy) paths fork.

Each file holds one kind of data movement, its CPU kernel and its GPU kernel side by side, and a
dispatch function that picks one by the array module of its input.
"""
