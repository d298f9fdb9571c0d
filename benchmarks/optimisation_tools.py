"""Measure the optimisation-based tools on the shipped digit models (numbers for the report).

    python benchmarks/optimisation_tools.py [--steps 200] [--invert-steps 100]

1. Class models (Simonyan et al. 2013, sec. 2), all 10 classes in one batch, for each shipped model,
   with the paper's setting (plain ascent on S_c - lambda ||I||^2 from the "zero" image; lr 0.1,
   lambda 0.01; the start and the L2 centre are the mean held-out digit, since the files store no
   mean image and both models are dead at the black image) and with Yosinski-style regularisers
   (jitter 1 px, Gaussian blur sigma 0.5 every 4 steps, clipping to the pixel range 0..1): how
   often the model itself and the OTHER shipped model put the class model in its own class
   (top-1), and the score rise.
2. Inversion (Mahendran & Vedaldi 2015): the relative feature error ||phi(x) - phi0|| / ||phi0||
   after --invert-steps Adam steps, per layer of mnist_vgg, on 4 held-out digits (max and mean):
   tests/tools/test_invert.py uses these maxima, with a margin, as thresholds.

Not a test: it prints tables.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import machine  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn.paths import DEFAULT_MODEL, GAP_MODEL, WEIGHTS_DIR  # noqa: E402
from minicnn.tools.modifiers import Clip, GaussianBlur, Jitter  # noqa: E402


def class_models(nets, steps):
    print(
        "| model     | regularisers            | own top-1 | other model top-1 | min score rise | seconds |"
    )
    print(
        "|-----------|-------------------------|-----------|-------------------|----------------|---------|"
    )
    names = list(nets)
    mean = np.load(WEIGHTS_DIR / "mnist_heldout.npz")["images"].mean(axis=0)[None] / 255.0
    settings = {
        "none (paper)": (),
        "jitter+blur+clip": (Jitter(1), GaussianBlur(0.5, every=4), Clip(0.0, 1.0)),
    }
    for name in names:
        net, other = nets[name], nets[names[1 - names.index(name)]]
        for label, regs in settings.items():
            t0 = time.perf_counter()
            result = mc.class_model(
                net, list(range(10)), steps=steps, regularizers=regs, seed=0, mean_image=mean
            )
            seconds = time.perf_counter() - t0
            own = (net.forward(result.image).argmax(axis=1) == np.arange(10)).mean()
            theirs = other.forward(result.image).argmax(axis=1)
            rise = (result.info["objective"][:, -1] - result.info["objective"][:, 0]).min()
            print(
                f"| {name:<9} | {label:<23} | {own:9.1f} | {(theirs == np.arange(10)).mean():5.1f} "
                f"({''.join(map(str, theirs))}) | {rise:14.2f} | {seconds:7.1f} |"
            )


def inversion(net, steps):
    held = np.load(WEIGHTS_DIR / "mnist_heldout.npz")
    x = (held["images"][:4, None] / 255.0).astype(net.dtype)
    print("| layer                | max error | mean error | error at step 0 | seconds |")
    print("|----------------------|-----------|------------|-----------------|---------|")
    for layer in net.names:
        if net[layer].kind not in ("ReLU", "MaxPool2D", "Dense"):
            continue
        t0 = time.perf_counter()
        result = mc.invert(net, x, layer, steps=steps, seed=0)
        final = result.info["final_error"]
        print(
            f"| {layer:<20} | {final.max():9.3f} | {final.mean():10.3f} | "
            f"{result.info['error'][:, 0].mean():15.3f} | {time.perf_counter() - t0:7.1f} |"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--invert-steps", type=int, default=100)
    parser.add_argument("--vgg", default=str(DEFAULT_MODEL))
    parser.add_argument("--gap", default=str(GAP_MODEL))
    args = parser.parse_args(argv)
    nets = {"mnist_vgg": mc.load(args.vgg), "mnist_gap": mc.load(args.gap)}
    print(f"machine: {machine()}")
    print(f"\nclass models, {args.steps} steps, all 10 classes in one batch\n")
    class_models(nets, args.steps)
    print(f"\ninversion of mnist_vgg, {args.invert_steps} Adam steps, 4 held-out digits\n")
    inversion(nets["mnist_vgg"], args.invert_steps)


if __name__ == "__main__":
    main()
