"""VGG16 saliency at batch 1 (``--batch``) through the API, with and without ``mc.tune_process()``.

Each measurement is a fresh process (the settings are process-wide and some count only before NumPy
or Numba's threads start), alternating "plain" and "tuned" so that both see the same machine load:
each process builds VGG16 (seeded), runs ``warmup`` saliency maps, then times ``passes`` more.
Prints each process's median and, per setting, the median of the process medians with their spread.

    python benchmarks/tune_process.py --rounds 3 --passes 8
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys

CHILD = r"""
import sys, time, json
mode, warmup, passes, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
import minicnn as mc
if mode == "tuned":
    mc.tune_process()  # before NumPy loads, as a program that wants it would call it
import numpy as np
net = mc.vgg16(seed=0)
x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
times = []
for i in range(warmup + passes):
    start = time.perf_counter()
    mc.saliency(net, x, target=3, progress=False)
    times.append(time.perf_counter() - start)
print(json.dumps(times[warmup:]))
"""


def run(mode: str, warmup: int, passes: int, batch: int) -> list[float]:
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(warmup), str(passes), str(batch)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="processes per setting")
    parser.add_argument("--passes", type=int, default=8, help="timed saliency maps per process")
    parser.add_argument("--warmup", type=int, default=2, help="untimed maps first (JIT, caches)")
    parser.add_argument("--batch", type=int, default=1, help="images per saliency call")
    args = parser.parse_args()
    machine = f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    print(f"{machine}: VGG16 saliency at batch {args.batch}, float32; "
          f"{args.rounds} processes per setting, alternating")  # fmt: skip
    medians: dict[str, list[float]] = {"plain": [], "tuned": []}
    for r in range(args.rounds):
        for mode in ("plain", "tuned") if r % 2 == 0 else ("tuned", "plain"):
            times = run(mode, args.warmup, args.passes, args.batch)
            medians[mode].append(statistics.median(times))
            spread = f"min {1000 * min(times):.0f}, max {1000 * max(times):.0f}"
            median = f"median {1000 * medians[mode][-1]:.0f} ms"
            print(f"round {r + 1} {mode:5s}: {median} ({spread}) over {len(times)} maps")
    for mode, values in medians.items():
        print(f"{mode:5s}: median of process medians {1000 * statistics.median(values):.0f} ms "
              f"(spread {1000 * min(values):.0f}-{1000 * max(values):.0f})")  # fmt: skip
    ratio = statistics.median(medians["plain"]) / statistics.median(medians["tuned"])
    print(f"plain / tuned: {ratio:.2f}")


if __name__ == "__main__":
    main()
