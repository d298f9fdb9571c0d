"""Every attribution method minicnn has against every sanity check: the README's table, generated.

    python benchmarks/method_tests.py [--part digits|vgg16|depth|all] [--count 8] [--readme]

Parts (each writes its key of benchmarks/method_tests.json, the others are kept):

digits  the shipped VGG-style digit model (weights/mnist_vgg.h5) on ``--count`` held-out digits (the
        first of each class, in class order), every method it allows (tools/sanity_methods.py: the
        registry's class-explaining methods, occlusion included) under the default protocol:
        cascading and independent randomisation of all 6 learned layers, permuted labels
        (weights/mnist_vgg_permuted.h5), class sensitivity over the top 3 classes, random logit,
        smooth MPRT (8 samples), efficient MPRT; the pointing game with the shipped GAP model on
        ``--pointing-count`` clutter canvases (CAM joins there). One record per cell: method,
        test, protocol, measure, value, verdict (tools/sanity_table.py).
vgg16   per-layer curves of a random VGG16 (mc.vgg16(seed=0), He initialisation: step 0 is itself
        random) at 224x224 on 2 shipped photos: cascading and independent randomisation of all 16
        learned layers from the top, gradient, guided backprop, DeconvNet and Grad-CAM, Spearman
        |.| per step; the plots benchmarks/sanity_vgg16_cascade.png and _independent.png.
depth   class sensitivity (top 3 classes) of random VGG-style networks of 1 to 5 conv blocks
        (VGG16's blocks, seed 0, then global average pooling and a dense layer to 1,000 classes,
        seeded by the depth) on the same photos: does the map change with the class, by depth?

``--readme`` rewrites the README's block between the method_tests markers from the JSON (no
computation); tests/tools/test_sanity_table.py checks that the README holds exactly that block.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import machine  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn.paths import DEFAULT_MODEL, GAP_MODEL, WEIGHTS_DIR  # noqa: E402
from minicnn.tools.sanity_table import markdown  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "method_tests.json"
README = HERE.parent / "README.md"
BEGIN, END = "<!-- method_tests.py: begin -->", "<!-- method_tests.py: end -->"
VGG_METHODS = ["gradient", "guided", "deconvnet", "grad_cam"]
DIGIT_TESTS = ["cascade", "independent", "data", "class", "random_logit", "smooth_mprt", "efficient_mprt"]


def digits(count: int) -> np.ndarray:
    """The first held-out digit of each class (0, 1, 2, ...), then the next ones: (count, 1, 28, 28)."""
    with np.load(WEIGHTS_DIR / "mnist_heldout.npz") as f:
        images, labels = f["images"], f["labels"]
    order = np.argsort(labels, kind="stable").reshape(10, -1).T.ravel()[:count]
    return (images[order, None] / 255.0).astype(np.float32)


def clutter(count: int):
    with np.load(WEIGHTS_DIR / "clutter.npz") as f:
        return (f["images"][:count, None] / 255.0).astype(np.float32), f["boxes"][:count], f["labels"][:count]


def photos(n: int = 2):
    paths = sorted((WEIGHTS_DIR / "photos").glob("*.jpg"))[:n]
    x = mc.preprocess(np.stack([mc.load_image(p, size=(224, 224)) for p in paths]), "caffe")
    return x.astype(np.float32), [p.name for p in paths]


def digits_part(count: int, pointing_count: int) -> dict:
    from minicnn.tools.sanity_data import PERMUTED_MODEL
    from minicnn.tools.sanity_methods import METHODS, available_methods
    from minicnn.tools.sanity_protocols import DEFAULT_PROTOCOL
    from minicnn.tools.sanity_suite import SUITE_SMOOTH_SAMPLES, run_checks
    from minicnn.tools.sanity_table import cells

    x = digits(count)
    net = mc.load(DEFAULT_MODEL)
    methods = available_methods(net) + ["occlusion"]
    t0 = time.perf_counter()
    f = run_checks(net, x, "predicted", methods, DIGIT_TESTS, permuted=mc.load(PERMUTED_MODEL), progress=True)
    gap = mc.load(GAP_MODEL)
    canvases, boxes, labels = clutter(pointing_count)
    point = run_checks(gap, x, "predicted", [m for m in METHODS if m != "occlusion"], ["pointing"],
                       pointing=(gap, canvases, boxes, labels))  # fmt: skip
    records = cells(f) + cells(point)
    print(f.table())
    print("\n".join(f.verdicts() + point.verdicts()))
    return {
        "what": f"mnist_vgg.h5 on {count} held-out digits (one per class, in class order); pointing game: "
        f"mnist_gap.h5 on {pointing_count} clutter canvases",
        "protocol": DEFAULT_PROTOCOL,
        "smooth_mprt_samples": SUITE_SMOOTH_SAMPLES,
        "seconds": round(time.perf_counter() - t0, 1),
        "cells": records,
    }


def vgg16_part() -> dict:
    from minicnn.render.randomization import result_plot
    from minicnn.render.save import save_png
    from minicnn.tools.sanity import randomization_test
    from minicnn.tools.sanity_methods import METHODS

    x, names = photos()
    net = mc.vgg16(seed=0)
    out = {"what": f"random VGG16 (seed 0) at 224x224 on {', '.join(names)}", "methods": VGG_METHODS}
    for cascade in (True, False):
        t0 = time.perf_counter()
        res = randomization_test(net, x, "predicted", VGG_METHODS, cascade=cascade, progress=True)
        test = "cascade" if cascade else "independent"
        out[test] = {
            "protocol": res.protocol,
            "steps": ["trained", *res.layers],
            "spearman_abs": {
                m: [round(float(v), 4) for v in res.similarity[m]["spearman_abs"]] for m in VGG_METHODS
            },
            "seconds": round(time.perf_counter() - t0, 1),
        }
        titles = {m: METHODS[m][0] for m in VGG_METHODS}
        save_png(result_plot(res, "spearman_abs", titles), HERE / f"sanity_vgg16_{test}.png")
    return out


def depth_part() -> dict:
    from minicnn.layers import Dense, GlobalAvgPool2D
    from minicnn.network import Sequential
    from minicnn.render.lines import line_chart
    from minicnn.render.save import save_png
    from minicnn.tools.sanity_checks import class_sensitivity
    from minicnn.tools.sanity_methods import METHODS

    x, names = photos()
    out = {"what": f"random VGG-style nets of 1-5 conv blocks at 224x224 on {', '.join(names)}", "blocks": []}
    curves = {m: [] for m in VGG_METHODS}
    for k in range(1, 6):
        layers = []
        for layer in mc.vgg16(seed=0).layers:
            layers.append(layer)
            if layer.name == f"block{k}_pool":
                break
        width = (64, 128, 256, 512, 512)[k - 1]
        net = Sequential(layers + [GlobalAvgPool2D(name="gap"), Dense(width, 1000, name="predictions")])
        net["predictions"].init_params(np.random.default_rng(k), net.dtype)
        res = class_sensitivity(net, x, VGG_METHODS, top=3)
        out["blocks"].append(k)
        for m in VGG_METHODS:
            curves[m].append(round(res.similarity[m]["spearman_abs"], 4))
        out["protocol"] = res.protocol
        print(k, {m: curves[m][-1] for m in VGG_METHODS}, flush=True)
    out["class_similarity"] = curves
    title = (
        "class sensitivity by depth: Spearman (abs) between the top-3 classes' maps; "
        f"protocol {out['protocol']}"
    )
    steps = [f"{k} blocks" for k in out["blocks"]]
    picture = line_chart({METHODS[m][0]: v for m, v in curves.items()}, steps, title)
    save_png(picture, HERE / "sanity_class_depth.png")
    return out


def curve_table(steps, curves: dict) -> str:
    """Markdown: one row per method, one column per step."""
    from minicnn.tools.sanity_methods import METHODS

    lines = ["| method | " + " | ".join(steps) + " |", "|---|" + "---|" * len(steps)]
    for m, values in curves.items():
        lines.append(f"| {METHODS[m][0]} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    return "\n".join(lines)


def readme_block(data: dict) -> str:
    """The README's block, from the JSON alone."""
    d = data["digits"]
    parts = [
        BEGIN,
        f"{d['what']}; protocol **{d['protocol']}** (tools/sanity_protocols.py), smooth MPRT with "
        f'{d["smooth_mprt_samples"]} samples. Each cell: the number, then the verdict; "fg": more than a '
        "quarter of the pixels are zero in either map, so the number is the Spearman correlation (abs) over "
        "the pixels non-zero in both.",
        "",
        markdown(d["cells"]),
    ]
    if "vgg16" in data:
        v = data["vgg16"]
        for test in ("cascade", "independent"):
            parts += ["", f"{v['what']}: {test} randomisation from the top, Spearman (abs) with the first "
                      f"network's maps after each layer (protocol {v[test]['protocol']}; plot: "
                      f"`benchmarks/sanity_vgg16_{test}.png`):", "",
                      curve_table(v[test]["steps"], v[test]["spearman_abs"])]  # fmt: skip
    if "depth" in data:
        g = data["depth"]
        steps = [f"{k} block{'s' if k > 1 else ''}" for k in g["blocks"]]
        parts += ["", f"{g['what']}: class similarity (Spearman (abs) between the maps of each photo's top 3 "
                  f"classes; protocol {g['protocol']}; plot: `benchmarks/sanity_class_depth.png`):", "",
                  curve_table(steps, g["class_similarity"])]  # fmt: skip
    return "\n".join(parts + [END])


def write_readme(data: dict) -> None:
    text = README.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    README.write_text(text[:start] + readme_block(data) + text[end:], encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=("digits", "vgg16", "depth", "all"), default=None)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--pointing-count", type=int, default=100)
    parser.add_argument("--readme", action="store_true", help="rewrite the README block from the JSON")
    args = parser.parse_args()
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if args.part:
        mc.tune_process()
        print(f"machine: {machine()}")
        parts = ("digits", "vgg16", "depth") if args.part == "all" else (args.part,)
        for part in parts:
            if part == "digits":
                data["digits"] = digits_part(args.count, args.pointing_count)
            elif part == "vgg16":
                data["vgg16"] = vgg16_part()
            else:
                data["depth"] = depth_part()
            data["machine"] = machine()
            RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    if args.readme:
        write_readme(data)
    print(readme_block(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
