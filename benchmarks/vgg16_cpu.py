"""VGG16 224x224 on the CPU, minicnn against PyTorch in the same run, alternating.

Workloads: forward, and saliency (forward + input gradient of one class score, no weight gradients),
at batch 1 and 8. Reports medians, the minicnn / PyTorch time ratio, and GFLOP/s beside the sgemm
GFLOP/s measured in the same run. Both use every core (torch.set_num_threads(os.cpu_count())).

    python benchmarks/vgg16_cpu.py [--batches 1 8] [--repeats 7]
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


def workloads(batch: int, net, model, torch):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((batch, 3, 224, 224)) * 50).astype(np.float32)
    target = np.arange(batch) % 1000

    def mc_forward():
        return net.forward(x)

    def mc_saliency():
        y = net.forward(x)
        dy = np.zeros_like(y)
        dy[np.arange(batch), target] = 1
        return net.backward(dy)

    xt = torch.from_numpy(x)

    def torch_forward():
        with torch.no_grad():
            return model(xt)

    def torch_saliency():
        xi = xt.clone().requires_grad_(True)
        y = model(xi)
        y[torch.arange(batch), torch.from_numpy(target)].sum().backward()
        return xi.grad

    return {
        "forward": (mc_forward, torch_forward),
        "saliency": (mc_saliency, torch_saliency),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    import torch
    from torch_mirror import to_torch

    torch.set_num_threads(os.cpu_count())
    net = mc.vgg16(seed=0)
    model = to_torch(net)
    flops = harness.conv_flops(net, (3, 224, 224))
    print(f"machine: {harness.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = []
    peak_before = harness.sgemm_gflops()
    for batch in args.batches:
        for name, (mine, theirs) in workloads(batch, net, model, torch).items():
            times = harness.alternate({"minicnn": mine, "torch": theirs}, repeats=args.repeats)
            a, b = harness.median(times["minicnn"]), harness.median(times["torch"])
            work = flops * batch * (2 if name == "saliency" else 1)
            rows.append([name, batch, f"{a * 1e3:.0f}", f"{b * 1e3:.0f}", f"{a / b:.2f}",
                         f"{work / a / 1e9:.0f}", f"{work / b / 1e9:.0f}"])  # fmt: skip
            print(rows[-1], flush=True)
    peak = max(peak_before, harness.sgemm_gflops())
    print(f"\nsgemm (numpy, 2048^3): {peak:.0f} GFLOP/s; a saliency pass counts 2x the forward FLOPs")
    print(harness.table(rows, ["workload", "batch", "minicnn ms", "torch ms", "ratio", "minicnn GFLOP/s",
                               "torch GFLOP/s"]))  # fmt: skip


if __name__ == "__main__":
    main()
