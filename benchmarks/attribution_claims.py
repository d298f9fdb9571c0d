"""Measure the claims of the newer attribution methods on the shipped digit model (float64).

    python benchmarks/attribution_claims.py [--count 100]

1. Integrated Gradients' completeness gap (Sundararajan et al. 2017, sec. 3): |sum IG - (F(x) -
   F(0))| / |F(x) - F(0)| per digit (predicted class, zero baseline), median and max, for the
   trapezoid rule and Gauss-Legendre at 16, 64 and 256 steps.
2. Excitation backprop's total probability (Zhang et al. 2016, eq. 6): the sum of the winning
   probabilities at the input per digit, min and median; below 1 where a unit that its bias alone
   switches on has no excitatory input, 1 on the same network with its biases zeroed.

Not a test: it prints numbers for the README.
"""

from __future__ import annotations

import argparse

import numpy as np

import minicnn as mc
from minicnn.paths import DEFAULT_MODEL, HELDOUT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    with np.load(HELDOUT) as data:
        x = mc.preprocess(data["images"][: args.count, :, :, None], "unit").astype(np.float64)
    net = mc.load(DEFAULT_MODEL).astype(np.float64)
    n = len(x)
    scores = net.forward(x)
    t = scores.argmax(axis=1)
    diff = scores[range(n), t] - net.forward(np.zeros_like(x))[range(n), t]
    print(f"shipped {DEFAULT_MODEL.name}, {n} held-out digits, float64, predicted class, zero baseline")
    print("Integrated Gradients, |gap| / |F(x) - F(0)|:")
    for method in ("riemann_trapezoid", "gausslegendre"):
        for steps in (16, 64, 256):
            ig = mc.integrated_gradients(net, x, steps=steps, method=method)
            rel = np.abs(mc.completeness_gap(net, x, ig)) / np.abs(diff)
            print(f"  {method:<18} {steps:>4} steps: median {np.median(rel):.2e}, max {rel.max():.2e}")
    total = mc.excitation_backprop(net, x).reshape(n, -1).sum(axis=1)
    for layer in net.layers:
        if layer.has_params:
            layer.bias = np.zeros_like(layer.bias)
    bias_free = mc.excitation_backprop(net, x).reshape(n, -1).sum(axis=1)
    print(f"excitation backprop, sum of P at the input: min {total.min():.4f}, "
          f"median {np.median(total):.4f}; "
          f"biases zeroed: min {bias_free.min():.12f}, max {bias_free.max():.12f}")  # fmt: skip


if __name__ == "__main__":
    main()
