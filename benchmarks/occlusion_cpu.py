"""Occlusion on VGG16 224x224, 16x16 occluder at stride 8 (729 positions): incremental vs full vs Captum.

"incremental" and "full" are the tool users run, ``mc.occlusion(..., incremental=True / False)``:
incremental recomputes only the changed receptive fields (Nakandala et al. 2019), full runs every
occluded copy through the whole network. "captum" is Captum's Occlusion on the torch mirror with
the same window, stride and baseline. One image, fill 0, --batch positions per pass for all three.
Each contender runs --repeats times, alternating; medians. Outputs are checked: incremental against
full (scores), and both attribution maps against Captum's.

    python benchmarks/occlusion_cpu.py [--repeats 1] [--batch 32]
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)
    import torch
    from captum.attr import Occlusion
    from torch_mirror import to_torch

    torch.set_num_threads(os.cpu_count())
    net = mc.vgg16(seed=0)
    model = to_torch(net)
    image = (np.random.default_rng(0).standard_normal((3, 224, 224)) * 50).astype(np.float32)
    target = int(net.forward(image[None]).argmax())
    results = {}

    def ours(incremental):
        def run():
            results[incremental] = mc.occlusion(
                net,
                image,
                target=target,
                size=16,
                stride=8,
                fill="zero",
                batch_size=args.batch,
                incremental=incremental,
                progress=False,
            )

        return run

    def captum():
        occ = Occlusion(model)
        with torch.no_grad():
            results["captum"] = occ.attribute(
                torch.from_numpy(image[None]), sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8),
                baselines=0.0, target=target, perturbations_per_eval=args.batch)[0, 0].numpy()  # fmt: skip

    contenders = {"incremental": ours(True), "full": ours(False), "captum": captum}
    print(f"machine: {harness.machine()}, torch {torch.__version__}; 729 positions, batch {args.batch}")
    times = harness.alternate(contenders, repeats=args.repeats, warmup=0)
    inc, full = results[True], results[False]
    err = np.abs(inc.score - full.score).max() / np.abs(full.score).max()
    rows = []
    t_inc = harness.median(times["incremental"])
    for name, t in times.items():
        m = harness.median(t)
        rows.append([name, f"{m:.1f}", f"{m / t_inc:.2f}"])
    print(harness.table(rows, ["method", "seconds (median)", "time / incremental"]))
    print(f"incremental vs full: max relative difference of the scores {err:.2e}")
    ref = results["captum"]
    for name, res in (("incremental", inc), ("full", full)):
        diff = np.abs(res.attribution[0] - ref).max() / np.abs(ref).max()
        print(f"{name} attribution map vs Captum's: max relative difference {diff:.2e}")


if __name__ == "__main__":
    main()
