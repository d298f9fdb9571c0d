"""Class-model loop (Simonyan et al. 2013, sec. 2) on VGG16 224x224, 50 steps, minicnn vs PyTorch.

Both run the paper's plain gradient ascent on S_c(I) - lambda ||I||^2 from the zero image, one
forward + input-gradient pass per step, alternating, medians.

    python benchmarks/classmodel_cpu.py [--steps 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402

import minicnn as mc  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import torch
    from torch_mirror import to_torch

    torch.set_num_threads(os.cpu_count())
    net = mc.vgg16(seed=0)
    model = to_torch(net)
    target, lr, l2 = 130, 1.0, 0.01

    def mine():
        return mc.class_model(net, target, steps=args.steps, lr=lr, l2=l2).image

    def theirs():
        x = torch.zeros(1, 3, 224, 224, requires_grad=True)
        for _ in range(args.steps):
            objective = model(x)[0, target] - l2 * (x * x).sum()
            (grad,) = torch.autograd.grad(objective, x)
            with torch.no_grad():
                x += lr * grad
        return x

    print(f"machine: {harness.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    times = harness.alternate({"minicnn": mine, "torch": theirs}, repeats=args.repeats, warmup=0)
    a, b = harness.median(times["minicnn"]), harness.median(times["torch"])
    print(harness.table([[f"class model, {args.steps} steps", f"{a:.2f}", f"{b:.2f}", f"{a / b:.2f}"]],
                        ["workload", "minicnn s", "torch s", "ratio"]))  # fmt: skip


if __name__ == "__main__":
    main()
