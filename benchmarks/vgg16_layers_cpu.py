"""Where a VGG16 saliency pass spends its time: every layer's forward and backward, timed one by one.

Runs the layers of mc.vgg16 by hand (layer.forward / layer.backward, as Sequential does) with a timer
around each call, --repeats passes after one warm-up pass, and prints the median per layer. Batch 1
by default, float32, 224x224, gradient mode.

    python benchmarks/vgg16_layers_cpu.py [--batch 1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402

import minicnn as mc  # noqa: E402


def timed_pass(net, x):
    """One forward + backward pass; returns ({layer: forward s}, {layer: backward s})."""
    forward, backward, caches = {}, {}, []
    h = x
    for layer in net.layers:
        t0 = time.perf_counter()
        h, cache = layer.forward(h)
        forward[layer.name] = time.perf_counter() - t0
        caches.append(cache)
    dy = np.zeros_like(h)
    dy[:, 0] = 1.0
    for layer, cache in zip(reversed(net.layers), reversed(caches)):
        t0 = time.perf_counter()
        dy, _ = layer.backward(dy, cache)
        backward[layer.name] = time.perf_counter() - t0
    return forward, backward


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    net = mc.vgg16(seed=0)
    x = (np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224)) * 50).astype(np.float32)
    timed_pass(net, x)  # warm-up: JIT, allocator
    runs = [timed_pass(net, x) for _ in range(args.repeats)]
    print(f"machine: {harness.machine()}, VGG16 224x224 batch {args.batch}, float32, medians in ms\n")
    print("| layer | forward | backward |")
    print("|---|---|---|")
    total_f = total_b = 0.0
    for layer in net.layers:
        f = harness.median([r[0][layer.name] for r in runs]) * 1e3
        b = harness.median([r[1][layer.name] for r in runs]) * 1e3
        total_f, total_b = total_f + f, total_b + b
        print(f"| {layer.name} | {f:.1f} | {b:.1f} |")
    print(f"| sum | {total_f:.0f} | {total_b:.0f} |")


if __name__ == "__main__":
    main()
