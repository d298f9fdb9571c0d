"""CPU time of each Winograd transform kernel, one thread, two checkouts alternating, and of a VGG16
saliency pass.

For every VGG16 3x3 layer shape (224x224, batch 1, float32) and both lowerings (F(2x2) and
F(4x4)), each transform runs over the layer's tile rows step by step as ``run_tiles`` /
``run_adjoint`` cut them: the threaded kernel (on one Numba thread) and the kernel that each thread
of ``gemm.run_parts`` runs (the ``serial`` build, or ``Transform.channels`` where a checkout has
it). Each checkout runs in its own process, the checkouts alternating ``--rounds`` times; the table
gives per kernel the median over rounds of each process's median (ms of process CPU time), with
the range. Then ``mc.saliency`` on ``mc.vgg16(seed=0)`` at batch 1, the same way.

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        python benchmarks/winograd_kernels_cpu.py /path/to/main . [--rounds 3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict

CHILD = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import minicnn as mc
from minicnn.kernels import threads, winograd, winograd_f4

repeats, what = int(sys.argv[2]), sys.argv[3]
LAYERS = [(64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56), (256, 256, 56), (256, 512, 28),
          (512, 512, 28), (512, 512, 14)]
NAMES = ("input_tiles", "output_tiles", "output_gradient_tiles", "input_gradient_tiles")

def cpu_ms(fn):
    fn()
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(1000 * (time.process_time() - t))
    return statistics.median(times)

def serial_of(module, name, count):
    if hasattr(winograd, "Transform"):  # a kernel over a channel range
        channels = getattr(module, name.replace("_tiles", "_channels"))
        return lambda *args: channels(*args, 0, count)
    return threads.serial(getattr(module, name))

out = {}
if what == "kernels":
    rng = np.random.default_rng(0)
    for c, o, h in LAYERS:
        x = rng.standard_normal((1, c, h, h)).astype(np.float32)
        dy = rng.standard_normal((1, o, h, h)).astype(np.float32)
        bias = rng.standard_normal(o).astype(np.float32)
        for module, tile in ((winograd, 2), (winograd_f4, 4)):
            a = (tile + 2) ** 2
            tiles_h, tiles_w = module.tile_counts(h, h)
            rows = winograd._steps(tiles_h, a, c, o, tiles_w)
            steps = [(r0, min(r0 + rows, tiles_h)) for r0 in range(0, tiles_h, rows)]
            v = winograd._buffer(a, c * rows * tiles_w, np.float32)
            m = winograd._buffer(a, o * rows * tiles_w, np.float32)
            m[...] = rng.standard_normal(m.shape)
            v[...] = rng.standard_normal(v.shape)
            y = np.empty((1, o, h, h), np.float32)
            dx = np.zeros((1, c, h, h), np.float32)
            th, tw = tiles_h, tiles_w
            calls = {
                "input_tiles": (lambda k: [k(x, 1, th, tw, r0, r1, v) for r0, r1 in steps], c),
                "output_tiles": (lambda k: [k(m, bias, th, tw, r0, r1, y) for r0, r1 in steps], o),
                "output_gradient_tiles": (lambda k: [k(dy, th, tw, r0, r1, m) for r0, r1 in steps], o),
                "input_gradient_tiles": (lambda k: [k(v, 1, th, tw, r0, r1, dx) for r0, r1 in steps], c),
            }
            tag = "F2" if tile == 2 else "F4"
            for name, (run, count) in calls.items():
                threaded = getattr(module, name)
                if hasattr(winograd, "Transform"):  # the threaded kernel takes the thread count
                    threaded = (lambda k: lambda *args: k(*args, 1))(threaded)
                out[f"{tag} {name} {c}-{o}@{h}"] = cpu_ms(lambda: run(threaded))
                one = serial_of(module, name, count)
                out[f"{tag} {name} serial {c}-{o}@{h}"] = cpu_ms(lambda: run(one))
else:
    net = mc.vgg16(seed=0)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    out["saliency b1"] = cpu_ms(lambda: mc.saliency(net, x, "predicted"))
print(json.dumps(out))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--what", choices=["kernels", "saliency", "both"], default="both")
    args = parser.parse_args(argv)
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    whats = ["kernels", "saliency"] if args.what == "both" else [args.what]
    for what in whats:
        found = {side: defaultdict(list) for side in ("before", "after")}
        for _ in range(args.rounds):
            for side in ("before", "after"):
                path = os.path.abspath(getattr(args, side))
                done = subprocess.run([sys.executable, "-c", CHILD, path, str(args.repeats), what], env=env,
                                      capture_output=True, text=True, check=True)  # fmt: skip
                for key, ms in json.loads(done.stdout.splitlines()[-1]).items():
                    found[side][key].append(ms)
        print("| kernel | before ms | after ms | after / before |\n|---|---|---|---|")
        for key, before in found["before"].items():
            after = found["after"][key]
            b, a = statistics.median(before), statistics.median(after)
            print(f"| {key} | {b:.2f} ({min(before):.2f}-{max(before):.2f}) | {a:.2f} "
                  f"({min(after):.2f}-{max(after):.2f}) | {a / b:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
