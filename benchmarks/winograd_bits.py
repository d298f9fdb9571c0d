"""Hashes of both Winograd lowerings' outputs, to show that two checkouts compute the same bits.

For VGG16's 3x3 layer shapes at 224x224 (batch 1) and two small odd ones, float32 and float64:
U = transform_kernel(w), y = winograd_conv(x, U, b, 1) and dx = winograd_conv_adjoint(y, U, 1) of
F(2x2, 3x3) and F(4x4, 3x3), each hashed (SHA-256), and one hash of all. Run it in each checkout
(and with NUMBA_NUM_THREADS=1 for the one-thread path) and compare the last line:

    PYTHONPATH=<checkout> python benchmarks/winograd_bits.py
"""

from __future__ import annotations

import hashlib

import numpy as np

from minicnn.kernels import winograd, winograd_f4

# (batch, input channels, output channels, height = width)
SHAPES = [(1, 3, 64, 224), (1, 64, 64, 224), (1, 64, 128, 112), (1, 128, 128, 112), (1, 128, 256, 56),
          (1, 256, 256, 56), (1, 256, 512, 28), (1, 512, 512, 28), (1, 512, 512, 14), (2, 64, 64, 30),
          (1, 5, 7, 13)]  # fmt: skip


def main():
    total = hashlib.sha256()
    for n, c, o, h in SHAPES:
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(c * 1000 + o + h)
            x = rng.standard_normal((n, c, h, h)).astype(dtype)
            w = rng.standard_normal((o, c, 3, 3)).astype(dtype)
            b = rng.standard_normal(o).astype(dtype)
            for module in (winograd, winograd_f4):
                u = module.transform_kernel(w)
                y = module.winograd_conv(x, u, b, 1)
                dx = module.winograd_conv_adjoint(y, u, 1)
                one = hashlib.sha256()
                for array in (u, y, dx):
                    one.update(np.ascontiguousarray(array).tobytes())
                total.update(one.digest())
                name = module.__name__.split(".")[-1]
                print(name, n, c, o, h, np.dtype(dtype).name, one.hexdigest()[:16])
    print("all", total.hexdigest())


if __name__ == "__main__":
    main()
