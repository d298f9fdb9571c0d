"""Weakly supervised localisation on the shipped "digits in clutter" canvases (Simonyan et al. 2013,
sec. 3.1), with the shipped GAP model.

    python benchmarks/localization.py [--weights weights/mnist_gap.h5] [--target label|predicted]

For each of the 200 canvases (weights/clutter.npz: 84x84, one digit among fragments of other digits
and strokes, ground-truth box of the digit), the saliency map of the target class (the true label by
default) gives:

- graph cut (mc.localize): seeds at the 95% / 30% saliency quantiles, histogram colour models,
  PyMaxflow graph cut, box of the largest connected component; the defaults (4 bins, smoothness
  0.1) and a few other settings, reported on the first 100 canvases (where the defaults were
  chosen) and the other 100 separately;
- baseline "saliency CC": the box of the largest connected component of the saliency map
  thresholded at its 95% quantile (the same seeds, no segmentation);
- baseline "saliency all": the box of all pixels above the 95% quantile;
- baseline "blurred saliency CC": as "saliency CC" after a Gaussian blur (sigma 2 px) of the map,
  which joins the speckles of the raw gradient.

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
from minicnn.tools.modifiers import gaussian_blur  # noqa: E402


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
    half = len(x) // 2

    def row(name, boxes, seconds):
        iou = box_iou(boxes, truth)
        ok = iou >= 0.5
        rows.append((name, ok[:half].mean(), ok[half:].mean(), ok.mean(), iou.mean(), seconds))

    t0 = time.perf_counter()
    row("saliency CC (baseline)", np.array([saliency_box(s) for s in sal]), time.perf_counter() - t0)
    t0 = time.perf_counter()
    row("saliency all (baseline)", np.array([all_above_box(s) for s in sal]), time.perf_counter() - t0)
    t0 = time.perf_counter()
    blurred = gaussian_blur(sal[:, None].astype(np.float64), 2.0)[:, 0]
    row(
        "blurred saliency CC (baseline)",
        np.array([saliency_box(s) for s in blurred]),
        time.perf_counter() - t0,
    )
    for bins, smoothness in ((4, 0.1), (4, 0.0), (3, 0.1), (8, 0.1), (4, 1.0), (16, 1.0)):
        t0 = time.perf_counter()
        boxes, _ = mc.localize(net, x, target, bins=bins, smoothness=smoothness, saliency_map=sal)
        name = f"graph cut, bins {bins}, smoothness {smoothness:g}"
        row(name + (" (default)" if (bins, smoothness) == (4, 0.1) else ""), boxes, time.perf_counter() - t0)

    print(f"machine: {machine()}")
    print(f"model: {args.weights} ({net.meta.get('architecture', '?')}), data: {args.data}")
    print(
        f"{len(x)} canvases {x.shape[2]}x{x.shape[3]}, target: {args.target}, "
        f"model accuracy on them: {accuracy:.3f}"
    )
    print(f"saliency maps: {t_sal:.2f} s")
    print()
    print(f"IoU >= 0.5 rate on the first {half} canvases (where the defaults were chosen), the other")
    print(f"{len(x) - half} (held out from that choice) and all; mean IoU over all")
    print()
    print(f"| {'method':<46} | first | other |  all  | mean IoU | seconds |")
    print(f"|{'-' * 48}|-------|-------|-------|----------|---------|")
    for name, first, other, rate, mean, seconds in rows:
        print(f"| {name:<46} | {first:.3f} | {other:.3f} | {rate:.3f} | {mean:8.3f} | {seconds:7.2f} |")


if __name__ == "__main__":
    main()
