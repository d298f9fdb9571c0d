"""How far a float32 saliency map of VGG16 is from the float64 one, and why: minicnn (Winograd, as
it runs by default; im2col) and PyTorch float32, all against PyTorch float64.

The gradient of a ReLU network is piecewise constant in the ReLU masks and max-pool switches. Where
a pre-activation lies within float32 rounding of zero (or two pooled values within rounding of a
tie), float32 and float64 may take different sides; the input gradient then differs by that unit's
whole contribution, far more than the per-layer rounding (~1e-6). Winograd rounds ~10x more per
layer than a direct product (F(4x4, 3x3): 1-2e-6 vs 2e-7 relative), so it crosses more often.
For each image the script prints the largest difference relative to max |g64|, the number of
pixels beyond 1e-3 of it, and minicnn's count of ReLU units and switches that differ from its own
float64 forward pass (which equals PyTorch float64 to ~1e-14).

    python benchmarks/saliency_float32.py [--images 6] [--target 130]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn.tools.saliency import class_gradient  # noqa: E402


def crossings(net32, net64, x) -> tuple[int, int]:
    """(ReLU units, max-pool switches) whose float32 forward state differs from float64's."""
    a32, a64, relus, switches = x, x.astype(np.float64), 0, 0
    for l32, l64 in zip(net32.layers, net64.layers):
        a32, c32 = l32.forward(a32)
        a64, c64 = l64.forward(a64)
        if l32.is_rectifier:
            relus += int(((a32 > 0) != (a64 > 0)).sum())
        if hasattr(c32, "switches"):
            switches += int((c32.switches != c64.switches).sum())
    return relus, switches


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--target", type=int, default=130)
    args = parser.parse_args(argv)
    import torch
    from torch_mirror import to_torch

    net = mc.vgg16(seed=0)
    net64 = mc.vgg16(seed=0).astype(np.float64)
    direct = mc.vgg16(seed=0)
    for layer in direct.layers:
        if layer.is_convolution:
            layer.algorithm = "im2col"
    m32, m64 = to_torch(net), to_torch(net).double()
    target = np.array([args.target])

    def torch_gradient(model, x):
        t = torch.from_numpy(x).requires_grad_(True)
        (g,) = torch.autograd.grad(model(t)[0, args.target], t)
        return g.numpy()

    print(f"machine: {harness.machine()}, torch {torch.__version__}; VGG16 (seed 0), class {args.target}")
    rows = []
    for seed in range(args.images):
        x = (np.random.default_rng(seed).standard_normal((1, 3, 224, 224)) * 50).astype(np.float32)
        g64 = torch_gradient(m64, x.astype(np.float64))
        scale = np.abs(g64).max()
        row = [str(seed)]
        for g in (class_gradient(net, x, target), class_gradient(direct, x, target), torch_gradient(m32, x)):
            d = np.abs(g - g64)
            row.append(f"{d.max() / scale:.1e} ({int((d > 1e-3 * scale).sum())})")
        own = np.abs(class_gradient(net64, x.astype(np.float64), target) - g64).max() / scale
        relus, switches = crossings(net, net64, x)
        rows += [row + [f"{own:.0e}", str(relus), str(switches)]]
    print(harness.table(rows, ["image", "minicnn winograd", "minicnn im2col", "torch float32",
                               "minicnn float64", "ReLUs crossed", "switches crossed"]))  # fmt: skip
    print("cells: max |g - g64| / max |g64| (pixels beyond 1e-3 of max |g64|); crossings: minicnn winograd")


if __name__ == "__main__":
    main()
