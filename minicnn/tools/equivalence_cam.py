"""Grad-CAM = CAM on a global-average-pooling network (Selvaraju et al. 2017, sec. 3.1).

In a network ending in feature maps A -> global average pooling -> dense W, the class score is
S_c = sum_k w_ck mean_(x,y) A_k(x, y) + b_c, so dS_c/dA_k(x, y) = w_ck / (h w) everywhere and
Grad-CAM's weight alpha_k (the spatial mean of that gradient) is w_ck / (h w). Grad-CAM at the
pooling's input is therefore ReLU(M_c) / (h w), M_c = sum_k w_ck A_k the class activation map of
Zhou et al. (2016). The two sides are separate codes: ``tools/cam.cam`` reads the dense weights and
the recorded maps; ``tools/cam.grad_cam`` runs the backward pass down to the maps. Condition: the
network ends in GlobalAvgPool2D -> Dense (biases and the rest of the network do not matter).
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError
from minicnn.tools.cam import _cam_head, cam, grad_cam
from minicnn.tools.equivalence_section import Condition, Row, Section, gap

THEOREM = (
    "on a network ending in global average pooling and one dense layer, Grad-CAM at the pooling's "
    "input equals ReLU(CAM) / (h w) (Selvaraju et al. 2017, sec. 3.1; Zhou et al. 2016)"
)


def cam_section(setting) -> Section:
    """One row: (h w) Grad-CAM at the pooling's input vs ReLU(CAM), both at the maps' resolution."""
    net, rec, x = setting.net, setting.record, setting.record.input
    try:
        index, _ = _cam_head(net)
    except MinicnnError as exc:
        condition = Condition("ends in GlobalAvgPool2D -> Dense", False, str(exc).split(";")[0])
        notes = ["no row: CAM is not defined on this network"]
        return Section("cam", "Grad-CAM vs CAM", THEOREM, [condition], [], notes)
    (source,) = net.inputs[net.layers[index].name]
    maps = cam(net, x, setting.targets, upsample=False, record=rec)  # (N, h, w)
    xp = get_xp(maps)
    ours = grad_cam(net, x, setting.targets, layer=source, upsample=False, record=rec)
    h, w = maps.shape[1:]
    row = Row(
        f"{source} ({h}x{w})",
        "(h w) grad_cam",
        "ReLU(cam)",
        gap(ours * (h * w), xp.maximum(maps, 0)),
        setting.bound,
    )
    condition = Condition(
        "ends in GlobalAvgPool2D -> Dense", True, f"{net.layers[index].name} reads {source}"
    )
    notes = ["sides: tools/cam.grad_cam (backward pass to the maps) vs tools/cam.cam (dense weights x maps)"]
    return Section("cam", "Grad-CAM vs CAM", THEOREM, [condition], [row], notes)
