"""Peak memory (RSS) of saliency maps: minicnn against PyTorch as a saliency user runs it.

Each contender runs in a fresh process: build the network (seeded), compute --maps saliency maps of
one batch (forward + the input gradient of one class score, then the channel maximum of |gradient|),
and report its peak resident set size (getrusage ru_maxrss) and the size just after building. The
PyTorch side is what a saliency user runs:

- ``torch frozen``: every parameter with requires_grad False (no .grad is filled: a saliency map
  needs only the input's gradient), the input with requires_grad True, ``backward`` of the score;
- ``captum``: Captum's ``Saliency(model).attribute(x, target=1)`` on the same frozen model.

(Filling every parameter's .grad, as a training step does, costs PyTorch another copy of the
weights; no saliency user needs it, so it is not a contender.) Networks: VGG16 (torchvision's layout
built by torch itself, tests/torch_models.py) and ResNet-50 (tests/resnet_torch.py; minicnn builds
mc.resnet50 with BatchNorm kept as layers, as a random network has it, and ``--folded`` reads a
torch file instead, BatchNorm folded as users' files are). Alternating, medians; ratio = minicnn /
torch frozen.

``--trees A B ...`` runs minicnn from each of those source trees (PYTHONPATH set to the tree; e.g.
``/work/main`` against a branch's worktree), alternating with the torch contenders, one row each.

``--cache-limit MB`` runs minicnn with that bound on kept transformed kernels
(mc.set_kernel_cache_limit, minicnn/kernels/kernel_cache.py) instead of the default; ``--sweep``
prints time and peak for several limits (the trade-off).

    python benchmarks/memory_cpu.py [--models vgg16 resnet50] [--batches 1 8] [--maps 3] [--repeats 3]
                                    [--trees PATH ...] [--sweep] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, "..", "tests")

PRELUDE = """
import sys, time, resource
sys.path.insert(0, {tests!r})
import numpy as np
batch, maps = {batch}, {maps}
x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
"""

MINICNN = """
import minicnn as mc
mc.tune_process()  # as the minicnn command runs (minicnn/process.py)
if {limit} is not None:
    mc.set_kernel_cache_limit({limit} * 2**20)
net = mc.{model}(seed=0)
built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
for _ in range(maps):
    mc.saliency(net, x, 1)
seconds = (time.perf_counter() - t0) / maps
"""

TORCH = """
import torch
torch.set_num_threads({threads})
if {model!r} == "vgg16":
    import torch_models as tm
    model = tm.torchvision_vgg(tm.VGG16, hidden=4096, classes=1000, side=7)
else:
    from resnet_torch import torch_resnet
    model = torch_resnet({model!r}, classes=1000, seed=0)
model.eval()
for p in model.parameters():
    p.requires_grad_(False)  # frozen: a saliency map needs the input's gradient only
built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
xt = torch.from_numpy(x)
target = torch.ones(batch, dtype=torch.long)
t0 = time.perf_counter()
for _ in range(maps):
    if {captum}:
        from captum.attr import Saliency
        g = Saliency(model).attribute(xt, target=target, abs=True)
    else:
        xi = xt.clone().requires_grad_(True)
        model(xi)[torch.arange(batch), target].sum().backward()
        g = xi.grad.abs()
    g.amax(dim=1)
seconds = (time.perf_counter() - t0) / maps
"""

FOLDED = """
import minicnn as mc
mc.tune_process()
if {limit} is not None:
    mc.set_kernel_cache_limit({limit} * 2**20)
net = mc.load({path!r})  # a torch.save file written by another process: no torch in this one
built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
for _ in range(maps):
    mc.saliency(net, x, 1)
seconds = (time.perf_counter() - t0) / maps
"""

WRITE = """
import sys, torch
sys.path.insert(0, {tests!r})
from resnet_torch import torch_resnet
torch.save(torch_resnet({model!r}, classes=1000, seed=0).state_dict(), {path!r})
"""

REPORT = "\nprint(built, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, seconds)"


def torch_file(model: str) -> str:
    """The torchvision-layout state dict of ``model`` written by torch in a process of its own (once
    per run), for minicnn to read as a user's file."""
    path = os.path.join(tempfile.gettempdir(), f"minicnn-memory-{os.getpid()}-{model}.pth")
    if not os.path.exists(path):
        subprocess.run([sys.executable, "-c", WRITE.format(tests=TESTS, model=model, path=path)], check=True)
    return path


def measure(contender: str, model: str, batch: int, maps: int, limit=None, folded=False, tree=None):
    """(MB after building, peak MB, seconds per map) of one fresh process; ``tree``: the source tree
    minicnn is imported from (first on PYTHONPATH), else the installed one."""
    body = {"minicnn": FOLDED if folded else MINICNN, "torch frozen": TORCH, "captum": TORCH}[contender]
    path = torch_file(model) if folded and contender == "minicnn" else ""
    code = (PRELUDE + body + REPORT).format(tests=TESTS, batch=batch, maps=maps, model=model, limit=limit,
                                            threads=os.cpu_count(), captum=contender == "captum",
                                            path=path)  # fmt: skip
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([tree, *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{contender} {model} failed:\n{done.stderr[-2000:]}")
    built, peak, seconds = done.stdout.split()[-3:]
    return int(built) / 1024, int(peak) / 1024, float(seconds)


def compare(model: str, batch: int, maps: int, repeats: int, limit, folded: bool, trees=None) -> None:
    trees = (
        {f"minicnn {os.path.basename(os.path.normpath(t))}": t for t in trees} if trees else {"minicnn": None}
    )
    names = [*trees, "torch frozen"] + (["captum"] if _has_captum() else [])
    runs = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            contender = "minicnn" if name in trees else name
            runs[name].append(measure(contender, model, batch, maps, limit, folded, trees.get(name)))
    med = {name: [statistics.median(r[i] for r in runs[name]) for i in range(3)] for name in names}
    base = med["torch frozen"][1]
    for name in names:
        built, peak, seconds = med[name]
        spread = f"{min(r[1] for r in runs[name]):.0f}-{max(r[1] for r in runs[name]):.0f}"
        print(f"| {model} b{batch} | {name} | {built:.0f} | {peak:.0f} [{spread}] | {peak / base:.2f} | "
              f"{1e3 * seconds:.0f} |")  # fmt: skip


def _has_captum() -> bool:
    try:
        import captum  # noqa: F401
    except ImportError:
        return False
    return True


def sweep(model: str, batch: int, maps: int, repeats: int, limits, folded: bool) -> None:
    """minicnn's peak and time per map for each kernel-cache limit (MB), alternating."""
    runs = {limit: [] for limit in limits}
    for _ in range(repeats):
        for limit in limits:
            runs[limit].append(measure("minicnn", model, batch, maps, limit, folded))
    print(f"\n| {model} b{batch}: cache limit MB | peak MB | ms per map (median of {repeats} processes) |")
    print("|---|---|---|")
    for limit in limits:
        peak = statistics.median(r[1] for r in runs[limit])
        seconds = statistics.median(r[2] for r in runs[limit])
        print(f"| {limit} | {peak:.0f} | {1e3 * seconds:.0f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vgg16", "resnet50"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1])
    parser.add_argument("--maps", type=int, default=3, help="saliency maps per process")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trees", nargs="+", default=None, help="minicnn source trees to compare")
    parser.add_argument("--cache-limit", type=int, default=None, help="minicnn's kernel-cache limit, MB")
    parser.add_argument("--folded", action="store_true", help="minicnn reads a torch ResNet file")
    parser.add_argument("--sweep", action="store_true", help="minicnn's peak and time per cache limit")
    parser.add_argument("--quick", action="store_true", help="one repeat, VGG16 batch 1")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.batches, args.repeats = ["vgg16"], [1], 1
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.maps} maps per process, "
          f"medians of {args.repeats} processes")  # fmt: skip
    print("| network | contender | MB after building | peak MB [range] | peak / torch frozen | ms per map |")
    print("|---|---|---|---|---|---|")
    for model in args.models:
        for batch in args.batches:
            folded = args.folded and model != "vgg16"
            compare(model, batch, args.maps, args.repeats, args.cache_limit, folded, args.trees)
    if args.sweep:
        for model in args.models:
            sweep(model, args.batches[0], args.maps, args.repeats, [0, 32, 64, 128, 256], args.folded)
    print("each process builds its own network: the torch side torchvision's layout in torch, no minicnn")
    for model in args.models:
        path = os.path.join(tempfile.gettempdir(), f"minicnn-memory-{os.getpid()}-{model}.pth")
        if os.path.exists(path):
            os.remove(path)


if __name__ == "__main__":
    main()
