"""The sanity checks of saliency methods, measured: the method x test tables quoted in the README.

    python benchmarks/sanity_checks.py [--count 8] [--pointing-count 100] [--vgg-images 2] [--skip-vgg]

Three networks (Adebayo et al. 2018; Nie et al. 2018; Mahendran & Vedaldi 2016; Zhang et al. 2016):

1. the shipped VGG-style digit model (weights/mnist_vgg.h5) on ``--count`` held-out digits (one per
   class, in class order): cascading and independent randomisation of all 6 learned layers, the
   data randomisation test against weights/mnist_vgg_permuted.h5 (same architecture, permuted
   labels, see minicnn/tools/sanity_data.py), class sensitivity over each digit's top 3 classes,
   image recovery on the trained and a random copy;
2. the shipped GAP digit model (weights/mnist_gap.h5, adds CAM) on the same digits, and the pointing
   game on the first ``--pointing-count`` digits-in-clutter canvases (84x84; tolerance 15 px at 224,
   scaled: 5.6 px), with the centre baseline;
3. a random VGG16 (mc.vgg16(seed=0), He initialisation, no training: step 0 is itself random) at
   224x224 on ``--vgg-images`` shipped photos, randomising 4 layers (predictions, fc1, block5_conv1,
   block1_conv1; in the cascade each step adds the next of those four, not every layer between),
   SmoothGrad with 8 samples instead of 16, so that it runs in minutes on two CPU cores.

Every similarity is the mean over the images; "cascade" is the Spearman rank correlation (abs)
after the last step, "independent" its mean over the steps. Not a test: it prints the tables.
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
from minicnn.tools import sanity_methods  # noqa: E402
from minicnn.tools.sanity_data import PERMUTED_MODEL  # noqa: E402
from minicnn.tools.sanity_methods import available_methods  # noqa: E402
from minicnn.tools.sanity_suite import CLAIMS, TESTS, run_checks  # noqa: E402

VGG_LAYERS = ["predictions", "fc1", "block5_conv1", "block1_conv1"]


def digits(count: int) -> np.ndarray:
    """The first held-out digit of each class (0, 1, 2, ...), then the next ones: (count, 1, 28, 28)."""
    with np.load(WEIGHTS_DIR / "mnist_heldout.npz") as f:
        images, labels = f["images"], f["labels"]
    order = np.argsort(labels, kind="stable").reshape(10, -1).T.ravel()[:count]
    return (images[order, None] / 255.0).astype(np.float32)


def clutter(count: int):
    with np.load(WEIGHTS_DIR / "clutter.npz") as f:
        return (f["images"][:count, None] / 255.0).astype(np.float32), f["boxes"][:count], f["labels"][:count]


def on_digit(findings, x) -> None:
    """The cascade's rank correlation (abs) on the digit's own pixels (x > 0) only: on a black
    background about half of each gradient-type map is exactly zero in both networks (dead ReLUs far
    from the digit), and those shared ties lift the whole-image correlation."""
    from scipy.stats import spearmanr

    res = findings.results["cascade"]
    print("\ncascade, Spearman (abs) on the digit's pixels only (x > 0), and the share of exact zeros:")
    for m in res.methods:
        a, b = np.abs(res.maps[m][0]), np.abs(res.maps[m][-1])
        inside = x[:, 0] > 0
        rho = np.mean([spearmanr(a[i][inside[i]], b[i][inside[i]]).statistic for i in range(len(x))])
        zeros = ((a == 0) & (b == 0)).mean()
        print(f"  {m:<18}{rho:>8.3f}   both maps exactly zero at {zeros:.0%} of the pixels")


def report(title: str, findings, seconds: float) -> None:
    print(f"\n## {title}  ({seconds:.0f} s)\n")
    print(findings.table())
    for line in findings.verdicts() + findings.notes:
        print(line)


def vgg16_checks(n_images: int):
    """The random VGG16 at 224x224 on shipped photos, with a reduced set of randomised layers."""
    from minicnn.tools.sanity import randomization_test
    from minicnn.tools.sanity_checks import class_sensitivity, image_recovery

    net = mc.vgg16(seed=0)
    photos = sorted((WEIGHTS_DIR / "photos").glob("*.jpg"))[:n_images]
    x = mc.preprocess(np.stack([mc.load_image(p, size=(224, 224)) for p in photos]), "caffe").astype(
        np.float32
    )
    methods = available_methods(net)
    sanity_methods.SMOOTHGRAD_SAMPLES = 8  # the cost of SmoothGrad at 224 on two cores
    rows = {m: {} for m in methods}
    for cascade in (True, False):
        res = randomization_test(
            net, x, "predicted", methods, cascade=cascade, layers=VGG_LAYERS, progress=True
        )
        for m in methods:
            rank = res.similarity[m]["spearman_abs"]
            if cascade:
                rows[m]["cascade"], rows[m]["cascade-ssim"] = rank[-1], res.similarity[m]["ssim"][-1]
            else:
                rows[m]["independent"] = float(np.mean(rank[1:]))
    cs = class_sensitivity(net, x, methods, top=3)
    rec = image_recovery(net, x, "predicted", methods)
    for m in methods:
        rows[m]["class"] = cs.similarity[m]["spearman_abs"]
        rows[m]["recovery"] = (
            f"{rec.similarity['trained'][m]['ssim']:.2f} / {rec.similarity['random'][m]['ssim']:.2f}"
        )
    cols = ["cascade", "cascade-ssim", "independent", "class", "recovery"]
    lines = [f"{'method':<18}" + "".join(f"{c:>15}" for c in cols)]
    for m, row in rows.items():
        cells = "".join(f"{(v if isinstance(v, str) else f'{v:.3f}'):>15}" for v in (row[c] for c in cols))
        lines.append(f"{sanity_methods.METHODS[m][0]:<18}{cells}")
    return "\n".join(lines), [p.name for p in photos]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--pointing-count", type=int, default=100)
    parser.add_argument("--vgg-images", type=int, default=2)
    parser.add_argument("--skip-vgg", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    x = digits(args.count)

    t0 = time.perf_counter()
    net = mc.load(DEFAULT_MODEL)
    permuted = mc.load(PERMUTED_MODEL) if PERMUTED_MODEL.is_file() else None
    if permuted is not None:
        prov = permuted.meta.get("provenance", {})
        print(
            f"permuted-label model: train accuracy on its permuted labels "
            f"{prov.get('train_accuracy_permuted_labels', float('nan')):.3f}, held-out accuracy on true "
            f"labels {prov.get('heldout_accuracy_true_labels', float('nan')):.3f}"
        )
    tests = [t for t in TESTS if t != "pointing"]
    f = run_checks(net, x, "predicted", available_methods(net), tests, permuted=permuted, progress=True)
    report(f"mnist_vgg.h5, {args.count} held-out digits", f, time.perf_counter() - t0)
    on_digit(f, x)

    t0 = time.perf_counter()
    gap = mc.load(GAP_MODEL)
    canvases, boxes, labels = clutter(args.pointing_count)
    tests = [t for t in TESTS if t != "data"]
    f = run_checks(
        gap,
        x,
        "predicted",
        available_methods(gap),
        tests,
        pointing=(gap, canvases, boxes, labels),
        progress=True,
    )
    report(
        f"mnist_gap.h5, {args.count} held-out digits; pointing game on {args.pointing_count} canvases",
        f,
        time.perf_counter() - t0,
    )

    if not args.skip_vgg:
        t0 = time.perf_counter()
        table, names = vgg16_checks(args.vgg_images)
        seconds = time.perf_counter() - t0
        print(f"\n## random VGG16 (seed 0) at 224x224 on {', '.join(names)}  ({seconds:.0f} s)\n")
        print(table)
    print("\nthe papers:")
    for test, claim in CLAIMS.items():
        print(f"  {test}: {claim}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
