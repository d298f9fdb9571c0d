"""Weakly supervised localisation on the shipped "digits in clutter" canvases (Simonyan et al. 2013,
sec. 3.1), with the shipped GAP model.

    python benchmarks/localization.py [--weights weights/mnist_gap.h5] [--target label|predicted]

For each of the 200 canvases (weights/clutter.npz: 84x84, one digit among fragments of other digits
and strokes, ground-truth box of the digit), the saliency map of the target class (the true label by
default) gives:

- graph cut (mc.localize): seeds at the 95% / 30% saliency quantiles, histogram colour models,
  PyMaxflow graph cut, box of the largest connected component; with a few smoothness settings;
- baseline "saliency CC": the box of the largest connected component of the saliency map
  thresholded at its 95% quantile (the same seeds, no segmentation);
- baseline "saliency all": the box of all pixels above the 95% quantile.

Prints the fraction of boxes with IoU >= 0.5 against the ground truth and the mean IoU, as a table.
Not a test: tests/tools/test_localize.py asserts the floor measured here.
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
from minicnn.paths import GAP_MODEL, WEIGHTS_DIR  # noqa: E402
from minicnn.tools.localize import box_iou, saliency_box, seeds  # noqa: E402


def all_above_box(sal, quantile=0.95):
    fg = seeds(sal, quantile, 0.0)[0]
    ys, xs = np.nonzero(fg)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(GAP_MODEL))
    parser.add_argument("--data", default=str(WEIGHTS_DIR / "clutter.npz"))
    parser.add_argument("--target", choices=("label", "predicted"), default="label")
    args = parser.parse_args(argv)

    net = mc.load(args.weights)
    data = np.load(args.data)
    x = (data["images"][:, None] / 255.0).astype(net.dtype)
    truth = data["boxes"]
    labels = [int(v) for v in data["labels"]]
    scores = np.concatenate([net.forward(x[i : i + 50]) for i in range(0, len(x), 50)])
    accuracy = float((scores.argmax(axis=1) == np.asarray(labels)).mean())
    target = labels if args.target == "label" else "predicted"
    t0 = time.perf_counter()
    sal = np.concatenate(
        [
            mc.saliency(net, x[i : i + 50], target if isinstance(target, str) else target[i : i + 50])
            for i in range(0, len(x), 50)
        ]
    )
    t_sal = time.perf_counter() - t0

    rows = []

    def row(name, boxes, seconds):
        iou = box_iou(boxes, truth)
        rows.append((name, float((iou >= 0.5).mean()), float(iou.mean()), seconds))

    t0 = time.perf_counter()
    row("saliency CC (baseline)", np.array([saliency_box(s) for s in sal]), time.perf_counter() - t0)
    t0 = time.perf_counter()
    row("saliency all (baseline)", np.array([all_above_box(s) for s in sal]), time.perf_counter() - t0)
    for smoothness in (0.0, 1.0, 3.0):
        t0 = time.perf_counter()
        boxes, _ = mc.localize(net, x, target, smoothness=smoothness, saliency_map=sal)
        name = f"graph cut, smoothness {smoothness:g}" + (" (default)" if smoothness == 1.0 else "")
        row(name, boxes, time.perf_counter() - t0)

    print(f"machine: {machine()}")
    print(f"model: {args.weights} ({net.meta.get('architecture', '?')}), data: {args.data}")
    print(
        f"{len(x)} canvases {x.shape[2]}x{x.shape[3]}, target: {args.target}, "
        f"model accuracy on them: {accuracy:.3f}"
    )
    print(f"saliency maps: {t_sal:.2f} s")
    print()
    print(f"| {'method':<34} | IoU>=0.5 | mean IoU | seconds |")
    print(f"|{'-' * 36}|----------|----------|---------|")
    for name, rate, mean, seconds in rows:
        print(f"| {name:<34} | {rate:8.3f} | {mean:8.3f} | {seconds:7.2f} |")


if __name__ == "__main__":
    main()
