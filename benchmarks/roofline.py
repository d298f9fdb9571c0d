"""Per-layer roofline: each layer's time, its lowering's arithmetic and the rate it reaches against this
machine's sgemm peak, measured in the same run.

For every convolution and dense layer of a saliency pass (forward, then the input gradient), with
the lowering ``auto`` chooses (minicnn/kernels/conv.py), it prints

- the multiply-adds the lowering hands to GEMM: the direct count O*C*kh*kw*Ho*Wo per image for im2col
  and the pointwise products, a * O * C per tile for Winograd (a = 16 tile positions for F(2x2, 3x3),
  36 for F(4x4, 3x3); tiles over the batch), the transforms not counted;
- the rate reached, 2 * those multiply-adds / time, and its fraction of sgemm's rate on a large square
  product (NumPy's BLAS, every core, measured at the start of the run: the ceiling a lowering's GEMMs
  could reach), and the time at that ceiling (``bound``): what is left to gain in each layer.

Totals by layer kind and lowering follow. ``--lowerings`` also times every convolution under each
lowering that applies to it, alternating in one process, and prints the fastest (forward + input
gradient): the measurement behind the choice rule.

    python benchmarks/roofline.py [--model resnet50|resnet18|vgg16] [--batch 1] [--repeats 5]
                                  [--cpu-time] [--lowerings] [--quick]

ResNets are read from a torch.save state dict of the torchvision layout (tests/resnet_torch.py,
BatchNorm folded on load, as a user's file) where torch is installed, else built by mc.resnet*.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402  (applies minicnn's process settings first)
import numpy as np  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn.kernels import conv as conv_kernels  # noqa: E402
from minicnn.kernels import winograd, winograd_f4  # noqa: E402

TILE_POSITIONS = {"winograd": (16, winograd.tile_counts), "winograd4": (36, winograd_f4.tile_counts)}


def build(model: str, folder: str):
    """The network: VGG16 by mc.vgg16; a ResNet from a torch file (BatchNorm folded) where torch is
    installed, else mc.resnet*."""
    if model == "vgg16":
        return mc.vgg16(seed=0)
    try:
        import torch
        from resnet_torch import torch_resnet
    except ImportError:
        return getattr(mc, model)(seed=0)
    path = os.path.join(folder, f"{model}.pth")
    torch.save(torch_resnet(model, classes=1000, seed=0).state_dict(), path)
    return mc.load(path)


def reads(net, layer):
    """The names of the nodes ``layer`` reads (a chain: the layer before it, or the input)."""
    if not net.is_chain:
        return net.inputs[layer.name]
    i = net.layers.index(layer)
    return (net.layers[i - 1].name,) if i else ("input",)


def timed_pass(net, x, clock):
    """One forward pass and the input gradient of the first score, every node timed:
    ({name: forward s}, {name: backward s}, {name: output})."""
    forward, backward, caches, outputs = {}, {}, [], {"input": x}
    for layer in net.layers:
        given = [outputs[name] for name in reads(net, layer)]
        t0 = clock()
        y, cache = layer.forward(tuple(given) if layer.several_inputs else given[0])
        forward[layer.name] = clock() - t0
        caches.append(cache)
        outputs[layer.name] = y
    top = net.layers[-1].name
    dy = np.zeros_like(outputs[top])
    dy[:, 0] = 1.0
    signals = {top: dy}
    for layer, cache in zip(reversed(net.layers), reversed(caches)):
        t0 = clock()
        dx, _ = layer.backward(signals.pop(layer.name), cache)
        backward[layer.name] = clock() - t0
        for name, signal in zip(reads(net, layer), dx if layer.several_inputs else (dx,)):
            signals[name] = signal if name not in signals else signals[name] + signal
    return forward, backward, outputs


def lowering_and_work(layer, x):
    """(lowering name, multiply-adds handed to GEMM) of a convolution or dense layer on input x."""
    n = x.shape[0]
    if not layer.is_convolution:
        return "gemm", n * int(np.prod(layer.weight.shape))
    cached = conv_kernels.transforms_kept(layer.transforms, layer.weight)
    lowering = conv_kernels.choose_lowering(
        x, layer.weight, layer.stride, layer.padding, layer.algorithm, cached
    )
    o, c, kh, kw = layer.weight.shape
    _, ho, wo = layer.output_shape(x.shape[1:])
    if lowering in TILE_POSITIONS:
        a, counts = TILE_POSITIONS[lowering]
        th, tw = counts(ho, wo)
        return lowering, a * o * c * n * th * tw
    return lowering, n * o * c * kh * kw * ho * wo


def applicable(layer, x) -> list[str]:
    """The lowerings that can run ``layer`` on input x."""
    found = []
    for algorithm in conv_kernels.ALGORITHMS[1:]:
        try:
            conv_kernels.choose_lowering(x, layer.weight, layer.stride, layer.padding, algorithm)
        except mc.MinicnnError:
            continue
        found.append(algorithm)
    return found


def compare_lowerings(net, outputs, repeats: int, clock) -> None:
    """Every convolution under each lowering that applies, alternating; forward + input gradient."""
    print("\n| layer | input | " + " | ".join(conv_kernels.ALGORITHMS[1:]) + " | fastest | auto |")
    print("|---|---|" + "---|" * (len(conv_kernels.ALGORITHMS) + 1))
    totals = defaultdict(float)
    for layer in net.layers:
        if not layer.is_convolution:
            continue
        x = outputs[reads(net, layer)[0]]
        auto = lowering_and_work(layer, x)[0]
        kept = layer.algorithm
        times = defaultdict(list)
        options = applicable(layer, x)
        for _ in range(repeats + 1):  # the first round warms up (JIT, kept transforms)
            for algorithm in options:
                layer.algorithm = algorithm
                t0 = clock()
                y, cache = layer.forward(x)
                layer.backward(y, cache)
                times[algorithm].append(clock() - t0)
        layer.algorithm = kept
        best = {a: harness.median(v[1:]) * 1e3 for a, v in times.items()}
        fastest = min(best, key=best.get)
        totals["auto"] += best[auto]
        totals["fastest"] += best[fastest]
        cells = [f"{best[a]:.2f}" if a in best else "" for a in conv_kernels.ALGORITHMS[1:]]
        print(f"| {layer.name} | {tuple(x.shape[1:])} | " + " | ".join(cells) + f" | {fastest} | {auto} |")
    print(f"\nconvolutions, forward + input gradient: auto {totals['auto']:.1f} ms, the fastest lowering per "
          f"layer {totals['fastest']:.1f} ms")  # fmt: skip


def sgemm_peak(clock, n: int = 2048, repeats: int = 5) -> float:
    """NumPy's float32 n x n x n product rate (best of ``repeats``) in GFLOP/s, timed with ``clock``
    (process CPU time divides by the cores it used: compare it with layers timed the same way)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        a @ b
        best = min(best, clock() - t0)
    return 2 * n**3 / best / 1e9


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50", choices=["resnet18", "resnet50", "vgg16"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpu-time", action="store_true", help="process CPU time, not wall-clock")
    parser.add_argument("--lowerings", action="store_true", help="time every applicable lowering per conv")
    parser.add_argument("--quick", action="store_true", help="2 repeats, no per-layer rows")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    clock = time.process_time if args.cpu_time else time.perf_counter
    peak = sgemm_peak(clock)
    print(f"machine: {harness.machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"sgemm peak (2048^3, NumPy's BLAS, its threads, same clock): {peak:.0f} GFLOP/s")
    with tempfile.TemporaryDirectory() as folder:
        net = build(args.model, folder)
    x = np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224)).astype(np.float32)
    timed_pass(net, x, clock)  # warm-up: JIT, allocator, kept transforms
    runs = [timed_pass(net, x, clock) for _ in range(repeats)]
    outputs = runs[0][2]
    what = "process CPU time" if args.cpu_time else "wall-clock"
    print(f"{args.model} 224x224 batch {args.batch}, float32, medians of {repeats} ({what}), ms\n")
    if not args.quick:
        print("| layer | lowering | forward | backward | GEMM MMACs | GFLOP/s fwd | of peak | bound fwd |")
        print("|---|---|---|---|---|---|---|---|")
    kinds = defaultdict(lambda: [0.0, 0.0, 0.0])  # kind -> forward s, backward s, bound s
    for layer in net.layers:
        f = harness.median([r[0][layer.name] for r in runs])
        b = harness.median([r[1][layer.name] for r in runs])
        kind, bound = layer.kind, 0.0
        if layer.has_params and layer.weight is not None:
            x_in = outputs[reads(net, layer)[0]]
            lowering, macs = lowering_and_work(layer, x_in)
            bound = 2 * macs / (peak * 1e9)
            k = (
                f"{layer.weight.shape[-1]}x{layer.weight.shape[-1]}/{layer.stride}"
                if layer.is_convolution
                else ""
            )
            kind = f"{layer.kind} {k} {lowering}".replace("  ", " ")
            if not args.quick:
                rate = 2 * macs / f / 1e9
                print(f"| {layer.name} | {lowering} | {f * 1e3:.2f} | {b * 1e3:.2f} | {macs / 1e6:.0f} | "
                      f"{rate:.0f} | {rate / peak:.0%} | {bound * 1e3:.2f} |")  # fmt: skip
        kinds[kind][0] += f
        kinds[kind][1] += b
        kinds[kind][2] += bound
    print("\n| kind / lowering | forward ms | backward ms | bound fwd ms |\n|---|---|---|---|")
    for kind, (f, b, bound) in sorted(kinds.items(), key=lambda t: -t[1][0] - t[1][1]):
        print(f"| {kind} | {f * 1e3:.1f} | {b * 1e3:.1f} | {bound * 1e3:.1f} |")
    total = [sum(v[i] for v in kinds.values()) * 1e3 for i in range(3)]
    print(f"| all | {total[0]:.1f} | {total[1]:.1f} | {total[2]:.1f} |")
    if args.lowerings:
        compare_lowerings(net, outputs, repeats, clock)


if __name__ == "__main__":
    main()
