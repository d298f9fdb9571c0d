"""Measure what the gradient tools say about the shipped digit model on the 500 held-out digits.

    python benchmarks/digit_tools.py [--weights weights/mnist_vgg.h5] [--batch 100]

1. Saliency mass inside the digit (Simonyan et al. 2013, sec. 3/6): for each held-out digit, the
   fraction of the saliency map (max over channels of |dS_true/dI|) that lies inside the digit's
   bounding box (pixels > 0.5 of full intensity, box dilated by 2 px, clipped to the image); beside
   it the same fraction for a uniform map, i.e. the box's area fraction, and for the same
   architecture with random He weights (a control: on black backgrounds, zero inputs with zero
   biases give dead ReLUs, so even an untrained net has little gradient off the digit), and the
   fraction on the digit's own stroke pixels (> 0.5), which separates trained from random weights.
   Mean over the digits.
2. Occlusion at the digit's centre (Zeiler & Fergus 2013, sec. 4.2): the drop of the true-class
   probability when an 8x8 square of zeros (network-input space; "unit" preprocessing maps 0 to
   black) covers the centre of the digit's bounding box; beside it the drop when the square sits in
   the image corner farthest from that centre (a control that should barely matter).

Not a test: it prints numbers for the report.
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
from minicnn.layers.softmax import softmax  # noqa: E402
from minicnn.paths import DEFAULT_MODEL, WEIGHTS_DIR  # noqa: E402

OCCLUDER = 8
DILATE = 2


def digit_boxes(unit_images):
    """Bounding boxes (N, 4) = y0, y1, x0, x1 (inclusive) of pixels > 0.5, dilated, clipped."""
    n, h, w = unit_images.shape
    boxes = np.zeros((n, 4), dtype=np.int64)
    for i, img in enumerate(unit_images > 0.5):
        ys, xs = np.nonzero(img)
        boxes[i] = [
            max(ys.min() - DILATE, 0),
            min(ys.max() + DILATE, h - 1),
            max(xs.min() - DILATE, 0),
            min(xs.max() + DILATE, w - 1),
        ]
    return boxes


def box_masks(boxes, shape):
    """(N, H, W) bool masks of the boxes."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    y0, y1, x0, x1 = (boxes[:, k, None, None] for k in range(4))
    return (yy >= y0) & (yy <= y1) & (xx >= x0) & (xx <= x1)


def occlude(x, corners):
    """Copies of x (N, C, H, W) with an OCCLUDER-sized square of zeros at corners (N, 2) = (y, x)."""
    out = x.copy()
    for i, (y, xx) in enumerate(corners):
        out[i, :, y : y + OCCLUDER, xx : xx + OCCLUDER] = 0
    return out


def random_copy(net):
    """The same architecture with fresh random (He, seed 0) weights."""
    layers = [type(layer)(**layer.config(), name=layer.name) for layer in net.layers]
    return mc.Sequential(layers, seed=0, meta=net.meta)


def true_prob(net, x, labels, batch):
    probs = [softmax(net.forward(x[s : s + batch]), axis=1) for s in range(0, len(x), batch)]
    return np.concatenate(probs)[np.arange(len(x)), labels]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, default=WEIGHTS_DIR / "mnist_heldout.npz")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    net = mc.load(args.weights)
    data = np.load(args.data)
    images, labels = data["images"], data["labels"].astype(np.int64)
    x = mc.preprocess(images[..., None], net.meta.get("preprocess", "unit"))
    n, _, h, w = x.shape
    start = time.perf_counter()

    boxes = digit_boxes(images / 255.0)
    masks = box_masks(boxes, (h, w))
    sal = np.concatenate(
        [mc.saliency(net, x[s : s + args.batch], labels[s : s + args.batch]) for s in range(0, n, args.batch)]
    ).astype(np.float64)
    inside = (sal * masks).sum(axis=(1, 2)) / sal.sum(axis=(1, 2))
    rand_net = random_copy(net)
    rand_sal = np.concatenate(
        [
            mc.saliency(rand_net, x[s : s + args.batch], labels[s : s + args.batch])
            for s in range(0, n, args.batch)
        ]
    ).astype(np.float64)
    rand_inside = (rand_sal * masks).sum(axis=(1, 2)) / np.maximum(rand_sal.sum(axis=(1, 2)), 1e-30)
    strokes = images > 127.5  # the digit's own pixels, a stricter region than the box
    on_strokes = (sal * strokes).sum(axis=(1, 2)) / sal.sum(axis=(1, 2))
    rand_strokes = (rand_sal * strokes).sum(axis=(1, 2)) / np.maximum(rand_sal.sum(axis=(1, 2)), 1e-30)
    uniform = masks.mean(axis=(1, 2))

    centre = np.stack([(boxes[:, 0] + boxes[:, 1]) // 2, (boxes[:, 2] + boxes[:, 3]) // 2], axis=1)
    corners_c = np.clip(centre - OCCLUDER // 2, 0, [h - OCCLUDER, w - OCCLUDER])
    far = np.stack(
        [np.where(centre[:, 0] < h / 2, h - OCCLUDER, 0), np.where(centre[:, 1] < w / 2, w - OCCLUDER, 0)],
        axis=1,
    )
    p0 = true_prob(net, x, labels, args.batch)
    p_centre = true_prob(net, occlude(x, corners_c), labels, args.batch)
    p_far = true_prob(net, occlude(x, far), labels, args.batch)
    elapsed = time.perf_counter() - start

    acc = (
        np.concatenate([net.forward(x[s : s + args.batch]).argmax(1) for s in range(0, n, args.batch)])
        == labels
    ).mean()
    print(f"model {args.weights.name} ({net.meta.get('architecture', '?')}), {n} held-out digits, "
          f"accuracy {acc:.1%}; {machine()}; {elapsed:.1f} s")  # fmt: skip
    print(f"saliency mass inside the dilated digit box: {inside.mean():.3f} (median {np.median(inside):.3f})")
    print(f"uniform map (box area fraction):            {uniform.mean():.3f}")
    print(f"same architecture, random weights (control): {rand_inside.mean():.3f}")
    print(
        f"saliency mass on the stroke pixels (> 0.5):  {on_strokes.mean():.3f}; random weights "
        f"{rand_strokes.mean():.3f}; uniform {strokes.mean(axis=(1, 2)).mean():.3f}"
    )
    drop_c, drop_f = np.mean(p0 - p_centre), np.mean(p0 - p_far)
    print(f"true-class probability, clean:              {p0.mean():.3f}")
    print(f"  8x8 zeros on the digit centre:            {p_centre.mean():.3f} (mean drop {drop_c:.3f})")
    print(f"  8x8 zeros in the far corner (control):    {p_far.mean():.3f} (mean drop {drop_f:.3f})")


if __name__ == "__main__":
    main()
