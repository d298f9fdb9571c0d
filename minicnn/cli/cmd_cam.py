"""``minicnn cam``: class activation maps (Zhou et al. 2016) and Grad-CAM (Selvaraju et al. 2017)."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.context import prepare
from minicnn.cli.options import add_common
from minicnn.cli.report import Report
from minicnn.errors import MinicnnError

HELP = "class activation maps: CAM for GAP networks, Grad-CAM for any conv layer"
EPILOG = """\
CAM (Zhou et al. 2016, sec. 2) weights the last feature maps of a network that ends in global
average pooling and one dense layer by the dense weights of the class. Grad-CAM (Selvaraju et al.
2017, sec. 3) weights the feature maps of any conv layer by the spatial mean of the class score's
gradient and keeps the positive part. Both are upsampled to the input and drawn over it.

examples:
  minicnn cam                                   # shipped GAP digit model: CAM and Grad-CAM
  minicnn cam --weights weights/mnist_vgg.h5    # a VGG-style model: Grad-CAM only
  minicnn cam --weights vgg16_weights_tf_dim_ordering_tf_kernels.h5 --image photo.jpg \\
              --layer block5_conv3_relu
"""


def add_arguments(parser) -> None:
    add_common(parser, weights="gap", layer="")


def run(args) -> Report:
    import minicnn as mc
    from minicnn.backend import to_numpy
    from minicnn.render import figures
    from minicnn.tools.cam import gradcam_layer

    ctx = prepare(args, "cam")
    net = ctx.net
    layer = gradcam_layer(net, args.layer, tuple(ctx.inputs.x.shape[1:]))
    maps = {}
    try:
        maps["CAM"] = to_numpy(mc.cam(net, ctx.inputs.x, ctx.targets, record=ctx.record))
        ctx.report.methods.append("CAM (Zhou et al. 2016)")
    except MinicnnError as exc:  # not a GAP network: Grad-CAM only
        ctx.report.say(f"  no CAM: {str(exc).split(';')[0]}; Grad-CAM only")
    maps["Grad-CAM"] = to_numpy(mc.grad_cam(net, ctx.inputs.x, ctx.targets, layer, record=ctx.record))
    ctx.report.methods.append(f"Grad-CAM at {layer} (Selvaraju et al. 2017)")
    ctx.report.settings["layer"] = layer
    ctx.report.say(f"  {' and '.join(maps)}; Grad-CAM at layer {layer}")
    same = "CAM" in maps and coincide(
        mc.cam(net, ctx.inputs.x, ctx.targets, upsample=False, record=ctx.record),
        mc.grad_cam(net, ctx.inputs.x, ctx.targets, layer, upsample=False, record=ctx.record),
    )
    if same:
        ctx.report.say(f"  {COINCIDE}")
    ctx.report.numbers["CAM equals Grad-CAM"] = float(same) if "CAM" in maps else float("nan")
    model = Path(args.weights).name
    for i in range(len(ctx.inputs.names)):
        title = f"{' and '.join(maps)} of {ctx.label(i)}, {model}, feature maps of {layer}"
        if same:
            title += f". {COINCIDE}"
        picture = figures.map_figure(ctx.inputs.display[i], {k: v[i] for k, v in maps.items()}, title)
        stem = ctx.stem(i, "cam")
        ctx.out.png(f"{stem}.png", picture, title)
        arrays = {key.lower().replace("-", ""): values[i] for key, values in maps.items()}
        ctx.out.arrays(f"{stem}.npz", arrays, ctx.meta(i, " and ".join(maps), layer=layer))
    return ctx.report


COINCIDE = (
    "CAM and Grad-CAM coincide: with global average pooling and one dense layer, Grad-CAM's weights "
    "are the class's dense weights / (h*w), so Grad-CAM = max(CAM, 0) / (h*w) (Selvaraju et al. "
    "2017, sec. 3.1); only CAM's negative part differs"
)


def coincide(cam, grad_cam) -> bool:
    """Whether Grad-CAM is CAM's positive part up to a positive scale, per image, at the feature
    maps' own resolution (N, h, w) (upsampling and the ReLU do not commute, so the full-size maps
    differ slightly at the edges of the positive region). Each map is divided by its maximum and
    compared to float32 precision."""
    import numpy as np

    from minicnn.backend import to_numpy

    def unit(m):
        m = to_numpy(m).astype(np.float64).reshape(len(m), -1)
        top = np.abs(m).max(axis=1, keepdims=True)
        return m / np.where(top > 0, top, 1.0)

    cam, grad_cam = to_numpy(cam), to_numpy(grad_cam)
    return cam.shape == grad_cam.shape and bool(
        np.allclose(unit(np.maximum(cam, 0)), unit(grad_cam), atol=1e-4)
    )
