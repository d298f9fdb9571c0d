"""``minicnn localize``: weakly supervised localisation from saliency and graph cut (Simonyan et al. 2013)."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.context import prepare
from minicnn.cli.options import add_common, positive_int
from minicnn.cli.report import Report

HELP = "localisation: a box around the object from its saliency map and a graph cut"
EPILOG = """\
Foreground seeds above the 95% quantile of the saliency map, background seeds below the 30% quantile,
colour models and a graph cut (PyMaxflow), then the bounding box of the largest connected component
(Simonyan, Vedaldi & Zisserman 2013, sec. 3.1, fig. 3). Without --image it runs on the shipped
"digits in clutter" canvases with the GAP model and reports the IoU with the true boxes. --target
label uses each canvas's true digit (as README's figure does); the default is the predicted class.

examples:
  minicnn localize                               # 4 shipped canvases, GAP digit model
  minicnn localize --count 200 --target label    # README's localisation figure
  minicnn localize --weights vgg16_weights_tf_dim_ordering_tf_kernels.h5 --image photo.jpg
"""


def add_arguments(parser) -> None:
    add_common(parser, weights="gap")
    parser.add_argument("--count", type=positive_int, default=4, help="shipped canvases used (default 4)")


def run(args) -> Report:
    import numpy as np

    import minicnn as mc
    from minicnn.backend import to_numpy
    from minicnn.render import figures
    from minicnn.tools.localize import box_iou

    # a fully convolutional (GAP) network takes any size: keep the canvases' and images' own size
    # (the shipped canvases are 84x84, the digits it was trained on 28x28)
    ctx = prepare(args, "localize", count=args.count, keep_size="gap", samples="clutter")
    ctx.report.methods.append("saliency + graph cut localisation (Simonyan et al. 2013, sec. 3.1)")
    sal = to_numpy(mc.saliency(ctx.net, ctx.inputs.x, ctx.targets, record=ctx.record))
    result = mc.localize(
        ctx.net, ctx.inputs.x, ctx.targets, saliency_map=sal, progress=not getattr(args, "no_progress", False)
    )
    truth = ctx.inputs.boxes
    ious = box_iou(result.boxes, truth) if truth is not None else None
    model = Path(args.weights).name
    for i, name in enumerate(ctx.inputs.names):
        box = tuple(int(v) for v in result.boxes[i])
        extra = f", IoU with the true box {ious[i]:.2f}" if ious is not None else ""
        ctx.report.say(f"  {name}: box (x0, y0, x1, y1) = {box}{extra}")
        if ious is not None:
            ctx.report.numbers[f"{name} IoU"] = float(ious[i])
        true_box = truth[i] if truth is not None else None
        title = f"localisation of {ctx.label(i)}, {model}: saliency, graph cut, largest component"
        picture = figures.localization_figure(
            ctx.inputs.display[i], sal[i], result.masks[i], box, true_box, title=title
        )
        stem = ctx.stem(i, "localization")
        ctx.out.png(f"{stem}.png", picture, title)
        arrays = {"mask": result.masks[i], "box": np.asarray(box), "saliency": sal[i]}
        if true_box is not None:
            arrays["true_box"] = np.asarray(true_box)
        ctx.out.arrays(f"{stem}.npz", arrays, ctx.meta(i, "localize"))
    if ious is not None:
        hits = int((ious >= 0.5).sum())
        ctx.report.say(f"  IoU >= 0.5 for {hits} of {len(ious)} canvases ({hits / len(ious):.3f})")
        ctx.report.numbers["fraction IoU >= 0.5"] = hits / len(ious)
    return ctx.report
