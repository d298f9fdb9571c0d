"""Time to the first result in a new process, with Numba's on-disk cache already warm.

Measured from process start (python -c) to the first saliency map: (a) of the shipped digit model
loaded from weights/, (b) of VGG16 224x224 loaded from a minicnn file (written once beforehand).
The first run of each warms the Numba cache; medians of the following runs are reported.

    python benchmarks/first_call.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CASES = {
    "shipped digit model": """
import numpy as np, minicnn as mc
from minicnn.paths import DEFAULT_MODEL
net = mc.load(DEFAULT_MODEL)
x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
mc.saliency(net, x, "predicted")
""",
    "VGG16 224x224 from a file": """
import numpy as np, minicnn as mc
net = mc.load({path!r})
x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
mc.saliency(net, x, "predicted")
""",
}


def run(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    import minicnn as mc

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "vgg16.h5")
        mc.save(mc.vgg16(seed=0), path)
        print("| case | first call, cache warm (median s) |\n|---|---|")
        for name, code in CASES.items():
            code = code.format(path=path)
            run(code)  # warms Numba's cache and the OS file cache
            times = [run(code) for _ in range(args.repeats)]
            print(f"| {name} | {statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
