"""How minicnn's time grows with batch size and input size, beside PyTorch, with a plot.

Saliency (forward + input gradient) of VGG16 at 224x224 for batch 1, 2, 4, 8, and of the notop
VGG16 (conv layers only) at 224, 320 and 448 pixels, batch 1. Both engines alternate; medians.
Time per unit of work should stay flat: no cliff.

    python benchmarks/scaling_cpu.py [--repeats 3] [--plot benchmarks/scaling_cpu.png]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402
from vgg16_cpu import workloads  # noqa: E402

import minicnn as mc  # noqa: E402


def saliency_pair(net, model, torch, x):
    def mine():
        y = net.forward(x)
        return net.backward(np.ones_like(y) / y.size)

    xt = torch.from_numpy(x)

    def theirs():
        xi = xt.clone().requires_grad_(True)
        y = model(xi)
        y.backward(torch.ones_like(y) / y.numel())
        return xi.grad

    return mine, theirs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plot", default=os.path.join(os.path.dirname(__file__), "scaling_cpu.png"))
    args = parser.parse_args(argv)
    import torch
    from torch_mirror import to_torch

    torch.set_num_threads(os.cpu_count())
    print(f"machine: {harness.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows, batch_points, size_points = [], [], []
    net = mc.vgg16(seed=0)
    model = to_torch(net)
    flops = harness.conv_flops(net, (3, 224, 224))
    for batch in (1, 2, 4, 8):
        mine, theirs = workloads(batch, net, model, torch)["saliency"]
        t = harness.alternate({"minicnn": mine, "torch": theirs}, repeats=args.repeats)
        a, b = harness.median(t["minicnn"]), harness.median(t["torch"])
        batch_points.append((batch, a, b))
        rows.append([f"VGG16 saliency, batch {batch}", f"{a * 1e3:.0f}", f"{b * 1e3:.0f}", f"{a / b:.2f}",
                     f"{a / batch * 1e3:.0f}", f"{2 * flops * batch / a / 1e9:.0f}"])  # fmt: skip
        print(rows[-1], flush=True)
    del net, model
    notop = mc.vgg16(seed=0, include_top=False)
    model = to_torch(notop)
    for size in (224, 320, 448):
        x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
        mine, theirs = saliency_pair(notop, model, torch, x)
        t = harness.alternate({"minicnn": mine, "torch": theirs}, repeats=args.repeats)
        a, b = harness.median(t["minicnn"]), harness.median(t["torch"])
        work = 2 * harness.conv_flops(notop, (3, size, size))
        size_points.append((size, a, b))
        rows.append([f"notop saliency {size}px", f"{a * 1e3:.0f}", f"{b * 1e3:.0f}", f"{a / b:.2f}",
                     f"{a / (size / 224) ** 2 * 1e3:.0f}", f"{work / a / 1e9:.0f}"])  # fmt: skip
        print(rows[-1], flush=True)
    print(harness.table(rows, ["workload", "minicnn ms", "torch ms", "ratio", "minicnn ms per unit",
                               "minicnn GFLOP/s"]))  # fmt: skip
    plot(batch_points, size_points, args.plot)


def plot(batch_points, size_points, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, points, label in ((axes[0], batch_points, "batch size (VGG16 224x224)"),
                              (axes[1], size_points, "input side, px (VGG16 notop, batch 1)")):  # fmt: skip
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], "o-", label="minicnn")
        ax.plot(xs, [p[2] for p in points], "s--", label="PyTorch")
        ax.set_xlabel(label)
        ax.set_ylabel("saliency time, s")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
