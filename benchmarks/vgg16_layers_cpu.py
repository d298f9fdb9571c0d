"""Where a VGG16 saliency pass spends its time: every layer's forward and backward, timed one by one.

Runs the layers of mc.vgg16 by hand (layer.forward / layer.backward, as Sequential does) with a timer
around each call, --repeats passes after one warm-up pass, and prints the median per layer. Batch 1
by default, float32, 224x224, gradient mode.

--compare times two configurations pass by pass, alternating, in one process: "before" is the
lowering as it was before issue 19 (F(2x2, 3x3) wherever Winograd applied, kernels transformed on
every call: auto with F(4x4) switched off and nothing kept) and "after" is the current one.
--cpu-time times the process's CPU time instead of wall-clock (with NUMBA_NUM_THREADS=1
OPENBLAS_NUM_THREADS=1 it compares the work done while other jobs share the machine).

    python benchmarks/vgg16_layers_cpu.py [--batch 1] [--repeats 5] [--compare] [--cpu-time]
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
from minicnn.kernels import conv as conv_kernels  # noqa: E402


def timed_pass(net, x, clock=time.perf_counter):
    """One forward + backward pass; returns ({layer: forward s}, {layer: backward s})."""
    forward, backward, caches = {}, {}, []
    h = x
    for layer in net.layers:
        t0 = clock()
        h, cache = layer.forward(h)
        forward[layer.name] = clock() - t0
        caches.append(cache)
    dy = np.zeros_like(h)
    dy[:, 0] = 1.0
    for layer, cache in zip(reversed(net.layers), reversed(caches)):
        t0 = clock()
        dy, _ = layer.backward(dy, cache)
        backward[layer.name] = clock() - t0
    return forward, backward


def configured(net, before: bool):
    """Set the lowering of issue 19's "before" (no F(4x4), no kept transforms) or "after" (current)."""
    convs = [layer for layer in net.layers if layer.is_convolution]
    kept = {layer.name: layer.transforms for layer in convs}
    current = conv_kernels.F4_MIN_TILES

    def configure():
        conv_kernels.F4_MIN_TILES = float("inf") if before else current
        for layer in convs:
            layer.transforms = None if before else kept[layer.name]

    return configure


def lowering_of(net, x, name):
    """The lowering auto chooses for layer ``name`` on input x (with its kept transforms)."""
    h = x
    for layer in net.layers:
        if layer.name == name:
            return conv_kernels.choose_lowering(h, layer.weight, layer.stride, layer.padding, layer.algorithm,
                                                cached=layer.transforms is not None)  # fmt: skip
        h, _ = layer.forward(h)
    raise KeyError(name)


def compare(net, x, repeats: int, clock) -> None:
    before, after = configured(net, True), configured(net, False)
    runs = {"before": [], "after": []}
    for configure in (before, after):  # warm-up both
        configure()
        timed_pass(net, x, clock)
    for _ in range(repeats):
        for configure, key in ((before, "before"), (after, "after")):
            configure()
            runs[key].append(timed_pass(net, x, clock))
    print("| layer | lowering after | before forward | before backward | after forward | after backward |")
    print("|---|---|---|---|---|---|")
    totals = {"before": [0.0, 0.0], "after": [0.0, 0.0]}
    for layer in net.layers:
        cells = []
        for key in ("before", "after"):
            for i in (0, 1):
                t = harness.median([r[i][layer.name] for r in runs[key]]) * 1e3
                totals[key][i] += t
                cells.append(f"{t:.1f}")
        lowering = lowering_of(net, x, layer.name) if layer.is_convolution else ""
        print(f"| {layer.name} | {lowering} | " + " | ".join(cells) + " |")
    b, a = sum(totals["before"]), sum(totals["after"])
    print(f"| sum | | {totals['before'][0]:.0f} | {totals['before'][1]:.0f} | {totals['after'][0]:.0f} "
          f"| {totals['after'][1]:.0f} |")  # fmt: skip
    print(f"\nwhole pass: before {b:.0f} ms, after {a:.0f} ms, after / before {a / b:.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compare", action="store_true", help="before issue 19 against now, alternating")
    parser.add_argument("--cpu-time", action="store_true", help="process CPU time, not wall-clock")
    args = parser.parse_args(argv)
    clock = time.process_time if args.cpu_time else time.perf_counter

    net = mc.vgg16(seed=0)
    x = (np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224)) * 50).astype(np.float32)
    if args.compare:
        what = "process CPU time" if args.cpu_time else "wall-clock"
        print(f"machine: {harness.machine()}, VGG16 224x224 batch {args.batch}, float32, medians of {what} "
              f"in ms\n")  # fmt: skip
        return compare(net, x, args.repeats, clock)
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
