"""Where the first map's time goes on an empty kernel cache: Numba's compile events, per kernel.

Runs one ``mc.saliency`` in a fresh process whose XDG_CACHE_HOME is an empty folder (no
NUMBA_CACHE_DIR), records Numba's ``numba:compile`` events around it and prints a table of the
compiled kernels (name, compiles, seconds of wall clock excluding the kernels compiled inside it), the
process's CPU and wall time to the map, and the number of compiles. Then a second process on the
same folder times the same map with every kernel loaded from the cache.

    python benchmarks/first_map_compile.py [--model vgg16|digits|demo]

``demo`` runs ``python -m minicnn demo`` instead (its wall and CPU time only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

PROBE = r"""
import json, resource, sys, time
from collections import defaultdict
import numba
from numba.core import event
import numpy as np
import minicnn as mc

model = sys.argv[1]
if model == "vgg16":
    net = mc.vgg16(seed=0)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
else:
    net = mc.load("mnist_vgg")
    x = np.random.default_rng(0).standard_normal((4, *net.input_shape)).astype(np.float32)

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

t0, c0 = time.perf_counter(), cpu()
with event.install_recorder("numba:compile") as rec:
    mc.saliency(net, x, "predicted")
wall, used = time.perf_counter() - t0, cpu() - c0
# Own time per kernel: a compile's span less the spans of the compiles nested in it (wall
# clock: the recorder's timestamps).
stack, per = [], defaultdict(lambda: [0, 0.0])
for ts, ev in rec.buffer:
    if ev.is_start:
        stack.append([ts, 0.0, ev.data["dispatcher"].py_func.__qualname__])
    else:
        start, nested, name = stack.pop()
        span = ts - start
        per[name][0] += 1
        per[name][1] += span - nested
        if stack:
            stack[-1][1] += span
print(json.dumps({"wall": wall, "cpu": used, "per": per,
                  "compiles": sum(v[0] for v in per.values())}))
"""


def _run(args, cache) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env["XDG_CACHE_HOME"] = cache
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=True)
    return done


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["vgg16", "digits", "demo"], default="vgg16")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as cache:
        if args.model == "demo":
            for label in ("empty cache", "warm cache"):
                out = tempfile.mkdtemp()
                t0 = time.perf_counter()
                before = os.times()
                _run([sys.executable, "-m", "minicnn", "demo", "--out", out], cache)
                after = os.times()
                cpu = sum(after[2:4]) - sum(before[2:4])  # the children's user and system time
                print(f"demo, {label}: {time.perf_counter() - t0:.1f} s wall, {cpu:.1f} s CPU")
            return
        for label in ("empty cache", "warm cache"):
            done = _run([sys.executable, "-c", PROBE, args.model], cache)
            report = json.loads(done.stdout.splitlines()[-1])
            print(f"{args.model}, {label}: map {report['wall']:.1f} s wall, {report['cpu']:.1f} s CPU, "
                  f"{report['compiles']} compiles")  # fmt: skip
            if report["per"]:
                print("| kernel | compiles | s (own, wall) |\n|---|---|---|")
                for name, (count, seconds) in sorted(report["per"].items(), key=lambda kv: -kv[1][1]):
                    print(f"| {name} | {count} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
