"""Occlusion on ResNets (graphs): incremental (every branch its own changed region, a sum reading
their union) against the full recomputation of every occluded image.

Both contenders are the tool users run, ``mc.occlusion(..., incremental=True / False)``, on random
ResNets from the zoo (``mc.resnet18`` / ``mc.resnet50``, float32) with random BatchNorm statistics,
one image, fill 0, --size x --size occluder at --stride (default 64 at stride 32 on 224x224: 6x6 =
36 positions, Zeiler & Fergus's square on a grid short enough for a shared machine), --batch
positions per pass. Each runs --repeats times, alternating; medians and the spread (min-max). The
scores are checked: incremental against full, max difference relative to the largest score. Also
printed: how many nodes ran on a crop smaller than their map, and the share of their area.

    python benchmarks/occlusion_graph.py [--models resnet18 resnet50] [--side 224] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402
from resnet_torch import random_statistics  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn.tools.incremental import incremental_scores  # noqa: E402
from minicnn.tools.occlusion import grid_positions  # noqa: E402


def random_resnet(name: str, side: int):
    return random_statistics(getattr(mc, name)(seed=0, input_size=side)).astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--stride", type=int, default=32)
    parser.add_argument("--batch", type=int, default=36)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    grid = grid_positions(args.side, args.size, args.stride)
    print(f"machine: {harness.machine()}")
    print(f"{args.side}x{args.side}, occluder {args.size} at stride {args.stride}: "
          f"{len(grid) ** 2} positions, batch {args.batch}, {args.repeats} repeats alternating")  # fmt: skip
    rows = []
    for name in args.models:
        net = random_resnet(name, args.side)
        image = np.random.default_rng(1).standard_normal((3, args.side, args.side)).astype(np.float32)
        results = {}

        def run(incremental, net=net, image=image, results=results):
            results[incremental] = mc.occlusion(net, image, target=0, size=args.size, stride=args.stride,
                                                fill="zero", batch_size=args.batch, incremental=incremental,
                                                progress=False)  # fmt: skip

        times = harness.alternate({"incremental": lambda: run(True), "full": lambda: run(False)},
                                  repeats=args.repeats, warmup=1)  # fmt: skip
        inc, full = results[True].score, results[False].score
        err = np.abs(inc - full).max() / np.abs(full).max()
        regions = {}
        positions = [(int(y), int(x)) for y in grid for x in grid][: args.batch]
        incremental_scores(net, image, positions, args.size, np.zeros(3, np.float32), keep=regions)
        shapes = dict(zip(net.names, net.shapes()))
        spatial = [n for n in net.names if len(shapes[n]) == 3]
        whole = {n for n in spatial if regions[n].r is None or regions[n].patch.shape[2] == shapes[n][1]}
        cropped = [n for n in spatial if n not in whole]
        share = np.mean([np.prod(regions[n].patch.shape[2:]) / np.prod(shapes[n][1:]) for n in cropped])
        t_inc, t_full = harness.median(times["incremental"]), harness.median(times["full"])
        spread = lambda t: f"{min(t):.2f}-{max(t):.2f}"  # noqa: E731
        rows.append([name, f"{t_inc:.2f} ({spread(times['incremental'])})",
                     f"{t_full:.2f} ({spread(times['full'])})", f"{t_full / t_inc:.2f}x",
                     f"{len(cropped)}/{len(spatial)}, {share:.0%}", f"{err:.1e}"])  # fmt: skip
    header = ["model", "incremental s", "full s", "speedup", "cropped nodes, area", "max rel diff"]
    print(harness.table(rows, header))


if __name__ == "__main__":
    main()
