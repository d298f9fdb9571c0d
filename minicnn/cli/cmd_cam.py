"""``minicnn cam``: class activation maps (Zhou et al. 2016) and Grad-CAM (Selvaraju et al. 2017)."""

from __future__ import annotations

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
    except MinicnnError as exc:  # not a GAP network: Grad-CAM only
        ctx.report.say(f"  no CAM: {str(exc).split(';')[0]}; Grad-CAM only")
    maps["Grad-CAM"] = to_numpy(mc.grad_cam(net, ctx.inputs.x, ctx.targets, layer, record=ctx.record))
    ctx.report.say(f"  {' and '.join(maps)}; Grad-CAM at layer {layer}")
    for i, name in enumerate(ctx.inputs.names):
        picture = figures.map_figure(ctx.inputs.display[i], {k: v[i] for k, v in maps.items()}, ctx.label(i))
        ctx.out.png(f"{name}_cam.png", picture)
        for key, values in maps.items():
            ctx.out.npy(f"{name}_{key.lower().replace('-', '')}.npy", values[i])
    return ctx.report
