"""One convolution layer of each VGG16 shape, im2col + GEMM against Winograd F(2x2, 3x3), and PyTorch.

Forward (y = conv(x) + b) and backward to the input (the transposed convolution, what a saliency map
needs), batch 1 by default, float32; the three contenders alternate, medians. Winograd's times include
transforming the kernel, which it does on every call. Shows which layers Winograd pays on, and why
Conv2D's "auto" keeps im2col below 16 channels (minicnn/layers/conv.py).

    python benchmarks/conv_lowering_cpu.py [--batch 1] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402

import minicnn  # noqa: E402, F401  (sets the thread settings before the kernels load)
from minicnn.kernels.conv import conv2d_backward, conv2d_forward  # noqa: E402

# (input channels, output channels, height = width) of VGG16's distinct convolution shapes
LAYERS = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56), (256, 256, 56),
          (256, 512, 28), (512, 512, 28), (512, 512, 14)]  # fmt: skip


def contenders(x, k, b, dy, torch):
    def mine(algorithm):
        def run():
            _, cache = conv2d_forward(x, k, b, 1, 1, algorithm)
            return conv2d_backward(dy, cache, k, 1, 1, algorithm=algorithm)

        return run

    xt, kt, bt, dyt = (torch.from_numpy(a) for a in (x, k, b, dy))

    def theirs():
        xi = xt.clone().requires_grad_(True)
        torch.nn.functional.conv2d(xi, kt, bt, padding=1).backward(dyt)
        return xi.grad

    return {"im2col": mine("im2col"), "winograd": mine("winograd"), "torch": theirs}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(os.cpu_count())
    print(f"machine: {harness.machine()}, torch {torch.__version__}, batch {args.batch}, float32")
    print("forward + input gradient of one layer, padding 1, medians in ms\n")
    print("| layer | im2col | Winograd | PyTorch | im2col / Winograd | Winograd / PyTorch |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for c, o, size in LAYERS:
        x = rng.standard_normal((args.batch, c, size, size), dtype=np.float32)
        k = rng.standard_normal((o, c, 3, 3), dtype=np.float32) * np.float32(np.sqrt(2 / (9 * c)))
        b = np.zeros(o, np.float32)
        dy = rng.standard_normal((args.batch, o, size, size), dtype=np.float32)
        times = harness.alternate(contenders(x, k, b, dy, torch), repeats=args.repeats)
        ms = {name: harness.median(t) * 1e3 for name, t in times.items()}
        print(f"| {c} -> {o}, {size}x{size} | {ms['im2col']:.1f} | {ms['winograd']:.1f} | {ms['torch']:.1f} "
              f"| {ms['im2col'] / ms['winograd']:.2f} | {ms['winograd'] / ms['torch']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
