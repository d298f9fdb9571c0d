"""Occlusion on VGG16 224x224, 16x16 occluder at stride 8 (729 positions): incremental vs full vs Captum.

"full" is minicnn's batched full recomputation (score_occluded), "incremental" recomputes only the
changed receptive fields (Nakandala et al. 2019), "captum" is Captum's Occlusion on the torch mirror
with the same window, stride and baseline. One image, fill 0, batches of --batch positions.
Each contender runs --repeats times, alternating; medians. Outputs are checked equal (1e-4).

    python benchmarks/occlusion_cpu.py [--repeats 1] [--positions 729]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn.tools.incremental import incremental_scores  # noqa: E402
from minicnn.tools.occlusion import grid_positions, score_occluded  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--positions", type=int, default=None, help="only the first P positions")
    args = parser.parse_args(argv)
    import torch
    from captum.attr import Occlusion
    from torch_mirror import to_torch

    torch.set_num_threads(os.cpu_count())
    net = mc.vgg16(seed=0)
    model = to_torch(net)
    image = (np.random.default_rng(0).standard_normal((3, 224, 224)) * 50).astype(np.float32)
    grid = grid_positions(224, 16, 8)
    positions = [(int(y), int(x)) for y in grid for x in grid][: args.positions]
    fill = np.zeros(3, np.float32)
    target = int(net.forward(image[None]).argmax())
    results = {}

    def batched(fn):
        def run():
            out = [
                fn(net, image, positions[i : i + args.batch], 16, fill)
                for i in range(0, len(positions), args.batch)
            ]
            results[fn.__name__] = np.concatenate(out)[:, target]

        return run

    def captum():
        occ = Occlusion(model)
        with torch.no_grad():
            occ.attribute(torch.from_numpy(image[None]), sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8),
                          baselines=0.0, target=target, perturbations_per_eval=args.batch)  # fmt: skip

    contenders = {"incremental": batched(incremental_scores), "full": batched(score_occluded)}
    if args.positions is None:
        contenders["captum"] = captum  # Captum always sweeps the whole grid
    print(f"machine: {harness.machine()}, torch {torch.__version__}; {len(positions)} positions")
    times = harness.alternate(contenders, repeats=args.repeats, warmup=0)
    inc, full = results["incremental_scores"], results["score_occluded"]
    err = np.abs(inc - full).max() / np.abs(full).max()
    rows = []
    t_inc = harness.median(times["incremental"])
    for name, t in times.items():
        m = harness.median(t)
        rows.append([name, f"{m:.1f}", f"{m / t_inc:.2f}"])
    print(harness.table(rows, ["method", "seconds (median)", "time / incremental"]))
    print(f"incremental vs full: max relative difference {err:.2e}")


if __name__ == "__main__":
    main()
