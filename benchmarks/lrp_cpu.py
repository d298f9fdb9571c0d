"""An LRP map against a saliency map on VGG16 (one forward, one backward each), float32, CPU.

Both contenders are the tools users run on one 224x224 image: ``mc.saliency(net, x, signed=True)``
(the gradient) and ``mc.lrp(net, x, composite=...)`` (default "epsilon": the epsilon rule at every
convolution and dense layer, which reuses the recorded outputs and the layers' own transposed
passes; "epsilon-plus" adds z+ at the convolutions, two products with clamped weights per layer).
They run alternating in one process after a warm-up; medians and their ratio.

    python benchmarks/lrp_cpu.py [--composites epsilon epsilon-plus] [--repeats 7] [--batch 1]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402

import minicnn as mc  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--composites", nargs="+", default=["epsilon"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"machine: {harness.machine()}")
    net = mc.vgg16(seed=0)
    x = np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224)).astype(np.float32) * 50
    contenders = {"saliency": lambda: mc.saliency(net, x, signed=True, progress=False)}
    for name in args.composites:
        contenders[f"lrp {name}"] = lambda name=name: mc.lrp(net, x, composite=name)
    times = harness.alternate(contenders, repeats=args.repeats, warmup=1)
    base = harness.median(times["saliency"])
    rows = [
        [name, f"{1000 * harness.median(t):.1f}", f"{1000 * min(t):.1f}-{1000 * max(t):.1f}",
         f"{harness.median(t) / base:.2f}x"]
        for name, t in times.items()
    ]  # fmt: skip
    print(f"VGG16 224x224 float32, batch {args.batch}, {args.repeats} repeats alternating")
    print(harness.table(rows, ["method", "median ms", "range ms", "vs saliency"]))


if __name__ == "__main__":
    main()
