"""ResNet-18 / ResNet-50 224x224 on the CPU, minicnn against PyTorch, alternating in one process.

The torchvision layout in plain torch.nn (tests/resnet_torch.py: seeded He weights, random BatchNorm
statistics), saved as a state dict with torch.save and read by ``mc.load`` (BatchNorm folded into
each convolution, as minicnn reads torchvision files). Workloads: forward, and saliency (forward +
the input gradient of one class score; PyTorch with frozen parameters, so no weight gradients), at
the batches given. Both engines use every core; minicnn with its process settings (harness).
Reports medians with their spread and the minicnn / PyTorch ratio of the medians.

Each engine runs the passes its users run for these results: the forward pass for scores alone,
minicnn's ``net.run(x, keep="output")`` (no caches, ReLUs computed inside the layers before them)
against PyTorch under ``torch.inference_mode()``; saliency as ``minicnn.saliency`` runs it,
``net.run(x, keep="caches")`` and ``backward(dy, release=True)``. ``--keep-all`` times the passes
of earlier tables instead: ``net.forward(x)`` and saliency on ``net.run(x)`` (every output kept),
PyTorch's forward under ``torch.no_grad()``.

    python benchmarks/resnet_cpu.py [--models resnet18 resnet50] [--batches 1 8] [--repeats 7] [--quick]

On a shared machine, compare the work each engine does with one thread each and process CPU time:
NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/resnet_cpu.py --threads 1 --cpu-time
(PyTorch's OpenMP threads wait spinning, and under load its wall-clock times say little).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402  (applies minicnn's process settings first)
import numpy as np  # noqa: E402

import minicnn as mc  # noqa: E402


def contenders(name: str, batch: int, folder: str, keep_all: bool = False) -> dict:
    import torch
    from resnet_torch import torch_resnet

    model = torch_resnet(name, classes=1000, seed=0)
    for p in model.parameters():
        p.requires_grad_(False)
    path = os.path.join(folder, f"{name}.pth")
    torch.save(model.state_dict(), path)
    net = mc.load(path)
    x = (np.random.default_rng(0).standard_normal((batch, 3, 224, 224))).astype(np.float32)
    target = np.arange(batch) % 1000
    xt = torch.from_numpy(x)

    def mc_forward():
        return net.forward(x) if keep_all else net.run(x, keep="output").output()

    def mc_saliency():
        rec = net.run(x) if keep_all else net.run(x, keep="caches")
        dy = np.zeros_like(rec.output())
        dy[np.arange(batch), target] = 1
        return rec.backward(dy) if keep_all else rec.backward(dy, release=True)

    def torch_forward():
        with torch.no_grad() if keep_all else torch.inference_mode():
            return model(xt)

    def torch_saliency():
        xi = xt.clone().requires_grad_(True)
        scores = model(xi)
        scores[torch.arange(batch), torch.from_numpy(target)].sum().backward()
        return xi.grad

    return {"minicnn forward": mc_forward, "torch forward": torch_forward,
            "minicnn saliency": mc_saliency, "torch saliency": torch_saliency}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch's threads")
    parser.add_argument("--cpu-time", action="store_true", help="process CPU time, not wall-clock")
    parser.add_argument("--quick", action="store_true", help="ResNet-50, batch 1, 5 repeats")
    parser.add_argument(
        "--keep-all", action="store_true", help="earlier tables' passes: every output kept, torch no_grad"
    )
    args = parser.parse_args()
    if args.quick:
        args.models, args.batches, args.repeats = ["resnet50"], [1], 5
    import torch

    torch.set_num_threads(args.threads)
    clock = time.process_time if args.cpu_time else time.perf_counter
    what = "CPU time" if args.cpu_time else "wall-clock"
    passes = ("net.forward / net.run (every output kept), torch no_grad" if args.keep_all else
              "net.run keep='output' / keep='caches' + release, torch inference_mode")  # fmt: skip
    print(f"{harness.machine()}; torch {args.threads} threads; {what}; {passes}; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            for batch in args.batches:
                race = contenders(name, batch, folder, args.keep_all)
                times = harness.alternate(race, repeats=args.repeats, warmup=2, clock=clock)
                for work in ("forward", "saliency"):
                    ours, theirs = times[f"minicnn {work}"], times[f"torch {work}"]
                    mo, mt = harness.median(ours), harness.median(theirs)
                    print(f"{name} b{batch} {work:8s} minicnn {1e3 * mo:6.0f} ms [{1e3 * min(ours):.0f}-"
                          f"{1e3 * max(ours):.0f}]  torch {1e3 * mt:6.0f} ms [{1e3 * min(theirs):.0f}-"
                          f"{1e3 * max(theirs):.0f}]  ratio {mo / mt:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
