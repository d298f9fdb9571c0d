"""minicnn's passes by what they keep, ResNet-50 and VGG16 224x224 on the CPU; two checkouts compared.

Workloads, each at batch 1 (``--batch``):
  forward all      ``net.run(x)``: every output and cache kept (what tools read)
  forward caches   ``net.run(x, keep="caches")``
  forward output   ``net.run(x, keep="output")``: the scores alone (checkouts without that level
                   skip it)
  saliency         ``net.run(x, keep="caches")`` then ``backward(dy, release=True)``, as
                   ``minicnn.saliency`` runs it
  saliency all     ``net.run(x)`` then ``backward(dy)``
ResNet-50 is the torchvision layout of tests/resnet_torch.py saved by torch and read by ``mc.load``
(BatchNorm folded into the convolutions, as minicnn reads torchvision files); VGG16 is
``mc.vgg16(seed=0)``.

To compare two checkouts of minicnn (say main and a branch) on a shared machine, time process CPU
time with one thread, in processes that alternate between the checkouts (each with its own Numba
cache folder, so that neither recompiles the other's kernels), and read medians with their range:

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/passes_cpu.py \\
        --compare /path/to/main /path/to/branch --rounds 4 --repeats 3

Without --compare the script times the checkout it imports, in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

import harness  # noqa: E402  (applies minicnn's process settings first)
import numpy as np  # noqa: E402


def networks(models, folder: str) -> dict:
    """name -> network, for ``models`` among "resnet50" and "vgg16"."""
    import minicnn as mc

    nets = {}
    for name in models:
        if name == "vgg16":
            nets[name] = mc.vgg16(seed=0)
            continue
        import torch
        from resnet_torch import torch_resnet

        path = os.path.join(folder, f"{name}.pth")
        torch.save(torch_resnet(name, classes=1000, seed=0).state_dict(), path)
        nets[name] = mc.load(path)
    return nets


def workloads(net, batch: int) -> dict:
    """workload name -> zero-argument callable (module docstring)."""
    from minicnn.record import KEEP

    x = (np.random.default_rng(0).standard_normal((batch, 3, 224, 224))).astype(np.float32)

    def saliency(keep):
        rec = net.run(x, keep=keep)
        dy = np.zeros_like(rec.output())
        dy[np.arange(batch), np.arange(batch) % dy.shape[1]] = 1
        return rec.backward(dy, release=keep == "caches")

    runs = {
        "forward all": lambda: net.run(x).output(),
        "forward caches": lambda: net.run(x, keep="caches").output(),
        "forward output": lambda: net.run(x, keep="output").output(),
        "saliency": lambda: saliency("caches"),
        "saliency all": lambda: saliency("all"),
    }
    return {name: fn for name, fn in runs.items() if name != "forward output" or "output" in KEEP}


def child(models, batch: int, repeats: int, cpu_time: bool) -> None:
    """Time this checkout's workloads; print {"model workload": [seconds]} as the last line (JSON)."""
    clock = time.process_time if cpu_time else time.perf_counter
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for model, net in networks(models, folder).items():
            runs = workloads(net, batch)
            times = harness.alternate(runs, repeats=repeats, warmup=2, clock=clock)
            out.update({f"{model} {name}": values for name, values in times.items()})
    print(json.dumps(out))


def compare(checkouts, models, batch: int, repeats: int, rounds: int, cpu_time: bool) -> None:
    """Run ``child`` under each checkout's PYTHONPATH in turn, ``rounds`` times; print medians, ranges
    and the ratio of each checkout's median to the first's."""
    times: dict = {c: {} for c in checkouts}
    caches = {c: tempfile.mkdtemp(prefix="numba-") for c in checkouts}
    for _ in range(rounds):
        for checkout in checkouts:
            env = dict(os.environ, PYTHONPATH=os.path.abspath(checkout), NUMBA_CACHE_DIR=caches[checkout])
            command = [sys.executable, os.path.abspath(__file__), "--child", "--batch", str(batch),
                       "--repeats", str(repeats), "--models", *models]  # fmt: skip
            command += ["--cpu-time"] if cpu_time else []
            result = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
            for name, values in json.loads(result.stdout.strip().splitlines()[-1]).items():
                times[checkout].setdefault(name, []).extend(values)
    first = checkouts[0]
    for name in times[first].keys() | set().union(*(t.keys() for t in times.values())):
        cells = []
        for checkout in checkouts:
            values = times[checkout].get(name)
            if not values:
                cells.append(f"{os.path.basename(checkout.rstrip('/'))}: -")
                continue
            m = statistics.median(values)
            ratio = ""
            if checkout != first and times[first].get(name):
                ratio = f" ({m / statistics.median(times[first][name]):.2f}x)"
            cells.append(f"{os.path.basename(checkout.rstrip('/'))} {1e3 * m:.0f} ms "
                         f"[{1e3 * min(values):.0f}-{1e3 * max(values):.0f}]{ratio}")  # fmt: skip
        print(f"{name:26s} " + "  ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "vgg16"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4, help="--compare: processes per checkout")
    parser.add_argument("--cpu-time", action="store_true", help="process CPU time, not wall-clock")
    parser.add_argument("--compare", nargs="+", metavar="CHECKOUT", help="checkouts to alternate")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare:
        what = "CPU time" if args.cpu_time else "wall-clock"
        print(f"{harness.machine()}; batch {args.batch}; {what}; {args.rounds} processes x {args.repeats} "
              f"repeats per checkout; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        return compare(args.compare, args.models, args.batch, args.repeats, args.rounds, args.cpu_time)
    child(args.models, args.batch, args.repeats, args.cpu_time)


if __name__ == "__main__":
    main()
