"""Would a bfloat16 forward pass keep saliency maps close to float32's? Measured, not assumed.

A bfloat16 forward as CPU inference engines run it (OpenVINO's default where the CPU has bfloat16
arithmetic) rounds each convolution's and dense layer's operands, input and weights, to bfloat16
(8 significant bits, round to nearest even) and accumulates in float32. The saliency map is then the
float32 backward pass through that forward pass's ReLU masks and max-pool switches. This script
emulates exactly that on PyTorch's float32 mirror of the network: every Conv2d and Linear rounds its
input and its weights to bfloat16 (the backward passes the signal straight through the rounding), so
the arithmetic is float32 and only the operands change. The maps are compared with the float64 map
in the units of benchmarks/saliency_float32.py (max |g - g64| / max |g64|, pixels beyond 1e-3), next
to the plain float32 map as the yardstick, with the class score's relative error, the rank
correlation of |map| with float64's, and the top-1 class.

    python benchmarks/bfloat16_maps.py [--images 6] [--target 130]

Two networks: VGG16 with seeded random weights on the six std-50 inputs of saliency_float32.py (no
ImageNet weights can be had here), and the shipped MNIST VGG (trained) on held-out digits 0-5, each
for its own class.
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

WEIGHTS = os.path.join(os.path.dirname(__file__), "..", "weights")


def bfloat16_operands(model):
    """``model`` (a float32 torch mirror) with every Conv2d / Linear computing on operands rounded to
    bfloat16 and accumulating in float32; the rounding is the identity in the backward pass."""
    import torch

    def rounded(t):
        return t + (t.to(torch.bfloat16).to(torch.float32) - t).detach()

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
            module.register_forward_pre_hook(lambda m, args: tuple(rounded(a) for a in args))
            weight = module.weight.detach()
            module.weight.data = weight.to(torch.bfloat16).to(torch.float32)
    return model


def compare(net, inputs, target: int) -> list[list[str]]:
    """A row per input: float32 and bfloat16-operand maps and scores against float64."""
    import torch
    from scipy.stats import spearmanr
    from torch_mirror import to_torch

    m64, m32, mbf = to_torch(net).double(), to_torch(net), bfloat16_operands(to_torch(net))
    rows = []
    for i, x in enumerate(inputs):
        results = []
        for model, dtype in ((m64, torch.float64), (m32, torch.float32), (mbf, torch.float32)):
            t = torch.from_numpy(x[None]).to(dtype).requires_grad_(True)
            scores = model(t)[0]
            (g,) = torch.autograd.grad(scores[target], t)
            results.append((g.numpy().astype(np.float64), scores.detach().numpy().astype(np.float64)))
        (g64, s64), rest = results[0], results[1:]
        scale, row = np.abs(g64).max(), [str(i)]
        for g, _ in rest:
            d = np.abs(g - g64)
            row.append(f"{d.max() / scale:.1e} ({int((d > 1e-3 * scale).sum())})")
        for _, s in rest:
            row.append(f"{abs(s[target] - s64[target]) / np.abs(s64).max():.1e}")
        row.append(f"{spearmanr(np.abs(rest[-1][0]).ravel(), np.abs(g64).ravel())[0]:.4f}")
        row.append("yes" if all(int(s.argmax()) == int(s64.argmax()) for _, s in rest) else "no")
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--target", type=int, default=130)
    args = parser.parse_args(argv)
    import torch

    header = ["input", "float32 map", "bfloat16-operand map", "float32 score", "bfloat16 score"]
    header += ["bfloat16 rank corr.", "same top-1"]
    print(f"machine: {harness.machine()}, torch {torch.__version__}")
    noise = [np.random.default_rng(s).standard_normal((3, 224, 224)) * 50 for s in range(args.images)]
    noise = [x.astype(np.float32) for x in noise]
    print(f"\nVGG16 (seed 0), class {args.target}, std-50 inputs of saliency_float32.py")
    print(harness.table(compare(mc.vgg16(seed=0), noise, args.target), header))
    digits = np.load(os.path.join(WEIGHTS, "mnist_heldout.npz"))
    net = mc.load(os.path.join(WEIGHTS, "mnist_vgg.h5"))
    picks = [int(np.flatnonzero(digits["labels"] == k)[0]) for k in range(args.images)]
    images = mc.preprocess(digits["images"][picks][..., None], net.meta.get("preprocess", "unit"))
    print(f"\nshipped MNIST VGG (trained), held-out digits 0 to {args.images - 1}, each its own class")
    rows = [compare(net, [image], k)[0] for k, image in enumerate(images)]
    print(harness.table([[str(k), *row[1:]] for k, row in enumerate(rows)], header))
    print("maps: max |g - g64| / max |g64| (pixels beyond 1e-3 of max |g64|); scores: |s - s64| / max |s64|;")
    print("rank corr.: Spearman of |g| with |g64|")


if __name__ == "__main__":
    main()
