"""VGG16 224x224 on an NVIDIA GPU: minicnn (CuPy) against PyTorch + cuDNN, both float32 with TF32 off.

Workloads (issue 9): saliency at batch 32 (images per second), saliency at batch 1 (latency), the
class-model loop (200 steps, batch 1), and occlusion 16x16 at stride 8 (incremental minicnn vs
Captum's Occlusion). Alternating, medians, with device synchronisation inside each timed call.

    python benchmarks/vgg16_gpu.py [--repeats 5] [--peak-tflops 67]
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
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peak-tflops", type=float, default=67.0, help="the GPU's float32 (non-TF32) peak")
    args = parser.parse_args(argv)
    import cupy
    import torch
    from torch_mirror import to_torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    net = mc.vgg16(seed=0)
    model = to_torch(net).cuda()
    net.to("gpu")
    flops = harness.conv_flops(net, (3, 224, 224))
    rows = []

    def timed_pair(name, batch, mine, theirs, work):
        def sync_mine():
            mine()
            cupy.cuda.Device().synchronize()

        def sync_theirs():
            theirs()
            torch.cuda.synchronize()

        t = harness.alternate({"minicnn": sync_mine, "torch": sync_theirs}, repeats=args.repeats, warmup=2)
        a, b = harness.median(t["minicnn"]), harness.median(t["torch"])
        rows.append([name, batch, f"{a * 1e3:.1f}", f"{b * 1e3:.1f}", f"{a / b:.2f}",
                     f"{batch / a:.0f}", f"{work / a / 1e12:.1f}",
                     f"{100 * work / a / 1e12 / args.peak_tflops:.0f}%"])  # fmt: skip
        print(rows[-1], flush=True)

    for batch in (32, 1):
        x = (np.random.default_rng(0).standard_normal((batch, 3, 224, 224)) * 50).astype(np.float32)
        xg, xt = cupy.asarray(x), torch.from_numpy(x).cuda()

        def mine(xg=xg):
            return mc.saliency(net, xg, 1)

        def theirs(xt=xt):
            xi = xt.clone().requires_grad_(True)
            model(xi)[:, 1].sum().backward()
            return xi.grad.abs().amax(dim=1)

        timed_pair("saliency", batch, mine, theirs, 2 * flops * batch)

    steps = 200

    def mine_cm():
        return mc.class_model(net, 130, steps=steps, lr=1.0, l2=0.01).image

    def theirs_cm():
        x = torch.zeros(1, 3, 224, 224, device="cuda", requires_grad=True)
        for _ in range(steps):
            (g,) = torch.autograd.grad(model(x)[0, 130] - 0.01 * (x * x).sum(), x)
            with torch.no_grad():
                x += g
        return x

    timed_pair(f"class model, {steps} steps", 1, mine_cm, theirs_cm, 2 * flops * steps)

    from captum.attr import Occlusion

    image = (np.random.default_rng(1).standard_normal((1, 3, 224, 224)) * 50).astype(np.float32)

    def mine_occ():
        return mc.occlusion(net, cupy.asarray(image), 1, size=16, stride=8, fill="zero", progress=False)

    def theirs_occ():
        with torch.no_grad():
            Occlusion(model).attribute(
                torch.from_numpy(image).cuda(), sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8),
                baselines=0.0, target=1, perturbations_per_eval=64,
            )  # fmt: skip

    timed_pair("occlusion 16/8 (vs Captum)", 1, mine_occ, theirs_occ, 729 * flops)
    print(f"GPU: {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}, CuPy {cupy.__version__}, "
          f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")  # fmt: skip
    print(harness.table(rows, ["workload", "batch", "minicnn ms", "torch ms", "ratio", "img/s (minicnn)",
                               "TFLOP/s (minicnn)", "of fp32 peak"]))  # fmt: skip


if __name__ == "__main__":
    main()
