"""Class-model loop (Simonyan et al. 2013, sec. 2) on VGG16 224x224, 50 steps, minicnn vs PyTorch.

Both run the paper's plain gradient ascent on S_c(I) - lambda ||I - I0||^2 from I0, one forward +
input-gradient pass per step, alternating, medians. I0 is a seeded random image (std 50), not the
zero image: in a randomly initialised VGG16 (zero biases) every ReLU is off at the zero image, the
gradient is zero and neither loop would move. The two final images are compared at the end.

    python benchmarks/classmodel_cpu.py [--steps 50] [--repeats 3]
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
    start = (np.random.default_rng(0).standard_normal((3, 224, 224)) * 50).astype(np.float32)
    ref = torch.from_numpy(start)[None]
    images = {}

    def mine():
        images["minicnn"] = mc.class_model(net, target, steps=args.steps, lr=lr, l2=l2, mean_image=start,
                                           progress=False).image  # fmt: skip

    def theirs():
        x = ref.clone().requires_grad_(True)
        for _ in range(args.steps):
            objective = model(x)[0, target] - l2 * ((x - ref) ** 2).sum()
            (grad,) = torch.autograd.grad(objective, x)
            with torch.no_grad():
                x += lr * grad
        images["torch"] = x.detach().numpy()

    print(f"machine: {harness.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    times = harness.alternate({"minicnn": mine, "torch": theirs}, repeats=args.repeats, warmup=0)
    a, b = harness.median(times["minicnn"]), harness.median(times["torch"])
    print(harness.table([[f"class model, {args.steps} steps", f"{a:.2f}", f"{b:.2f}", f"{a / b:.2f}"]],
                        ["workload", "minicnn s", "torch s", "ratio"]))  # fmt: skip
    moved = np.abs(images["torch"] - start).max()
    err = np.abs(images["minicnn"] - images["torch"]).max() / moved
    print(f"final images: torch moved up to {moved:.3g} from the start; minicnn - torch: {err:.2e} of that")


if __name__ == "__main__":
    main()
