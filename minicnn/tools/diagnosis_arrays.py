"""Hypotheses about the map itself: it is minicnn's map, handled differently afterwards.

Each function takes the diagnosis case (``tools/diagnosis.Case``: minicnn's map ``ours`` and the
reference, both float64 in minicnn's layout) and yields candidates ``(cause, detail, candidate,
reference)``: the reference would equal ``candidate`` if the hypothesis were true (``reference``
is None for the reference as read, or the view of it the hypothesis compares). The docstring of
each names the framework habit or issue it comes from.
"""

from __future__ import annotations

import numpy as np


def sign(case):
    """The map is -minicnn's: a loss that is minimised instead of a score that is maximised
    (tf-keras-vis' score functions and Keras' ``GradientTape`` of a loss), or dS/dx taken of -S."""
    yield (
        "sign",
        "the map is the negative of minicnn's (a minimised loss instead of the class score)",
        -case.ours,
        None,
    )


def absolute(case):
    """The map is |minicnn's|: Captum's ``Saliency`` takes the absolute value by default
    (``abs=True``), so its map given for ``--method gradient`` is |dS/dx|. For ``saliency`` the
    reverse: a signed map (``abs=False``, or a raw gradient) given where max_c |dS/dx| is asked."""
    if case.method == "saliency" and case.signed_reference:
        yield (
            "abs",
            "a signed map given for saliency (max over channels of |dS/dx|): its absolute value",
            (case.ours),
            np.abs(case.reference),
        )
    elif case.ours.min() < 0:
        yield (
            "abs",
            "the map is the absolute value of minicnn's (Captum Saliency's abs=True)",
            np.abs(case.ours),
            None,
        )


def scale(case):
    """The map is minicnn's times a factor, or normalised per image: tf-keras-vis ``normalize`` and
    pytorch-grad-cam's ``scale_cam_image`` map each image to 0..1 ((m - min) / (max - min)); a
    gradient taken of a score divided by a temperature or averaged over a batch is scaled."""
    ours, ref = case.ours.reshape(len(case.ours), -1), case.reference.reshape(len(case.ours), -1)
    norm = (ours * ours).sum()
    if norm == 0:
        return
    factor = float((ours * ref).sum() / norm)
    if abs(factor - 1) > case.tol and abs(factor + 1) > case.tol and factor != 0:  # -1 is ``sign``
        yield "scale", f"the map is minicnn's times {factor:.6g}", factor * case.ours, None
    fitted, factors = np.empty_like(ours), []
    for i in range(len(ours)):  # least squares a m + b per image
        design = np.stack([ours[i], np.ones_like(ours[i])], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, ref[i], rcond=None)
        fitted[i] = a * ours[i] + b
        factors.append((a, b))
    if any(abs(a - factor) > case.tol * abs(factor) or abs(b) > case.tol * case.scale for a, b in factors):
        shown = ", ".join(f"{a:.4g} m + {b:.4g}" for a, b in factors[:4]) + (
            ", ..." if len(factors) > 4 else ""
        )
        yield (
            "scale",
            f"each image's map rescaled (normalised per image: {shown})",
            (fitted.reshape(case.ours.shape)),
            None,
        )


def channel_order(case):
    """The map's colour channels are reversed (RGB <-> BGR): Keras' caffe models and OpenCV
    images (pytorch-grad-cam's examples read with ``cv2.imread``) are BGR, torchvision's RGB."""
    if case.ours.ndim == 4 and case.ours.shape[1] > 1:
        yield "channel-order", "the map's channels are reversed (BGR <-> RGB)", case.ours[:, ::-1], None


def layout(case):
    """The map's axes are arranged differently: height and width transposed (an image library's
    (x, y) order), or an NHWC array reshaped (not transposed) to NCHW and the reverse, the
    classic ``.reshape`` in place of ``.transpose`` / ``np.moveaxis`` when crossing between
    Keras/TensorFlow (NHWC) and PyTorch (NCHW)."""
    ours = case.ours
    if ours.shape[-1] == ours.shape[-2]:
        yield "layout", "height and width transposed", np.swapaxes(ours, -1, -2), None
    if ours.ndim == 4 and ours.shape[1] > 1:
        n, c, h, w = ours.shape
        yield (
            "layout",
            "an NHWC map reshaped to NCHW (reshape instead of transpose)",
            (ours.transpose(0, 2, 3, 1).reshape(n, c, h, w)),
            None,
        )
        yield (
            "layout",
            "an NCHW map reshaped to NHWC (reshape instead of transpose)",
            (ours.reshape(n, h, w, c).transpose(0, 3, 1, 2)),
            None,
        )


def batch(case):
    """Images of a batch get another image's map, or only the first image is explained:
    pytorch-grad-cam's guided backpropagation backpropagates the first image's score only
    (github.com/jacobgil/pytorch-grad-cam/issues/400 and /issues/530), and maps stacked in
    another order than the input batch."""
    ours, ref = case.ours, case.reference
    n = len(ours)
    if n < 2:
        return
    flat_o, flat_r = ours.reshape(n, -1), ref.reshape(n, -1)
    cost = np.abs(flat_r[:, None, :] - flat_o[None, :, :]).max(axis=2)  # cost[i, j]: ref i vs ours j
    source = cost.argmin(axis=1)
    if (source != np.arange(n)).any():
        moved = ", ".join(f"image {i} has image {int(j)}'s" for i, j in enumerate(source) if j != i)
        yield "batch", f"maps of other images of the batch: {moved}", ours[source], None
    first = np.zeros_like(ours)
    first[0] = ours[0]
    yield "batch", "only the first image of the batch explained, the others all zero", first, None


HYPOTHESES = (sign, absolute, scale, channel_order, layout, batch)
