"""Winograd F(2x2, 3x3) against F(4x4, 3x3), one layer of each VGG16 shape, alternating in one process.

Forward (y = conv(x) + b) and the input gradient (the transposed convolution, what a saliency map
needs), float32, padding 1. Four contenders per layer: F(2x2) and F(4x4), each transforming the
kernel on every call or with the kernel transformed once beforehand (what a Conv2D's cache gives).
The kernel transforms alone are timed too. Reports medians and the F(2x2) / F(4x4) ratio; this is
what ``choose_lowering`` in minicnn/kernels/conv.py was set from. On a shared machine read the ratios,
not the times.

    python benchmarks/winograd_tiles_cpu.py [--batch 1] [--repeats 7] [--cpu-time]

--cpu-time times the process's CPU time instead of wall-clock: run it with one thread per pool
(NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1) to compare the work each lowering does while other jobs
share the machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402

import minicnn  # noqa: E402, F401  (sets the thread settings before the kernels load)
from minicnn.kernels import winograd, winograd_f4  # noqa: E402

# (input channels, output channels, height = width) of VGG16's 3x3 convolutions with >= 16 channels
LAYERS = [(64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56), (256, 256, 56), (256, 512, 28),
          (512, 512, 28), (512, 512, 14)]  # fmt: skip


def contenders(x, k, b, dy):
    def layer(module, pretransformed):
        kept = module.transform_kernel(k)

        def run():
            u = kept if pretransformed else module.transform_kernel(k)
            module.winograd_conv(x, u, b, 1)
            return module.winograd_conv_adjoint(dy, u, 1)  # backward reads the same U

        return run

    def transforms(module):
        return lambda: module.transform_kernel(k)

    return {
        "F2": layer(winograd, False),
        "F2 cached": layer(winograd, True),
        "F4": layer(winograd_f4, False),
        "F4 cached": layer(winograd_f4, True),
        "F2 transforms": transforms(winograd),
        "F4 transforms": transforms(winograd_f4),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cpu-time", action="store_true", help="process CPU time, not wall-clock")
    args = parser.parse_args(argv)
    clock = time.process_time if args.cpu_time else time.perf_counter
    print(f"machine: {harness.machine()}, batch {args.batch}, float32")
    what = "process CPU time" if args.cpu_time else "wall-clock"
    print(f"forward + input gradient of one layer, padding 1, medians of {what} in ms\n")
    names = ["F2", "F2 cached", "F4", "F4 cached", "F2 transforms", "F4 transforms"]
    print("| layer | " + " | ".join(names) + " | F2 / F4 | F2 / F4, both cached |")
    print("|---" * (len(names) + 3) + "|")
    rng = np.random.default_rng(0)
    for c, o, size in LAYERS:
        x = rng.standard_normal((args.batch, c, size, size), dtype=np.float32)
        k = rng.standard_normal((o, c, 3, 3), dtype=np.float32) * np.float32(np.sqrt(2 / (9 * c)))
        b = np.zeros(o, np.float32)
        dy = rng.standard_normal((args.batch, o, size, size), dtype=np.float32)
        times = harness.alternate(contenders(x, k, b, dy), repeats=args.repeats, clock=clock)
        ms = {name: harness.median(t) * 1e3 for name, t in times.items()}
        cells = " | ".join(f"{ms[n]:.1f}" for n in names)
        print(f"| {c} -> {o}, {size}x{size} | {cells} | {ms['F2'] / ms['F4']:.2f} "
              f"| {ms['F2 cached'] / ms['F4 cached']:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
