"""Peak memory (RSS) of one VGG16 224x224 saliency run at batch 1: minicnn vs PyTorch.

Each side runs in a fresh process (build the network, one forward + input-gradient pass) and reports
its peak resident set size (getrusage ru_maxrss); alternating, medians.

    python benchmarks/memory_cpu.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = {
    "minicnn": """
import minicnn as mc
mc.tune_process()  # as the minicnn command runs (minicnn/process.py)
import numpy as np
net = mc.vgg16(seed=0)
x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
mc.saliency(net, x, 1)
""",
    "torch": """
import sys; sys.path.insert(0, {tests!r})
import numpy as np, torch
import torch_models as tm
torch.set_num_threads({threads})
# torchvision's VGG16 layout built by torch itself (seeded, no minicnn in this process): its peak is
# torch's own, not inflated by a second copy of the weights
model = tm.torchvision_vgg(tm.VGG16, hidden=4096, classes=1000, side=7)
x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32))
x.requires_grad_(True)
model(x)[0, 1].backward()
x.grad.abs().amax(dim=1)
""",
}
REPORT = "\nimport resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def peak_mb(name: str) -> float:
    code = CHILD[name].format(tests=os.path.join(HERE, "..", "tests"), threads=os.cpu_count()) + REPORT
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    runs = {"minicnn": [], "torch": []}
    for _ in range(args.repeats):
        for name in runs:
            runs[name].append(peak_mb(name))
    a, b = statistics.median(runs["minicnn"]), statistics.median(runs["torch"])
    print("| workload | minicnn MB | torch MB | ratio |\n|---|---|---|---|")
    print(f"| peak RSS, VGG16 saliency, batch 1 | {a:.0f} | {b:.0f} | {a / b:.2f} |")
    print("the torch process builds torchvision's VGG16 layout itself (tests/torch_models.py), no minicnn")


if __name__ == "__main__":
    main()
