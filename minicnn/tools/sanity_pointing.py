"""The pointing game (Zhang et al. 2016, "Top-down Neural Attention by Excitation Backprop", sec. 5.1),
scored as TorchRay's benchmark scores it.

A saliency map "points" at its maximum. The point is a hit when it falls within ``tolerance``
pixels of the object: TorchRay draws a disc of radius 15 px around the point (strictly inside:
distance^2 < 15^2) and counts a hit when the disc touches the object's mask, here its box. The
score is the mean over classes of each class's hit rate. The baseline points at the image centre.

TorchRay's 15 px are in the pixels of its VOC07 images (the maps are resized to them); here the
tolerance is 15 px at an input of 224 px, scaled to the input's size (84x84 canvases: 5.6 px),
so the disc covers the same fraction of the input as at VGG16's input size.

TorchRay's VGG16 table on VOC07 (all images) ranks Grad-CAM 86.6% > gradient 76.3% ~ guided
backprop 75.9% > centre 69.6% > DeconvNet 67.5%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.tools.sanity_methods import all_maps, check_methods, peak_map
from minicnn.tools.targets import as_batch

TOLERANCE_PX = 15
TOLERANCE_AT = 224
TORCHRAY_VGG16_VOC07 = {
    "grad_cam": 0.866,
    "gradient": 0.763,
    "guided": 0.759,
    "centre": 0.696,
    "deconvnet": 0.675,
}


def default_tolerance(height: int, width: int) -> float:
    """TorchRay's 15 px at a 224 px input, scaled to an input of height x width pixels."""
    return TOLERANCE_PX * min(height, width) / TOLERANCE_AT


def box_hit(point, box, tolerance: float) -> bool:
    """Whether pixel ``point`` (y, x) lies within ``tolerance`` of box (x0, y0, x1, y1), ends
    exclusive: some box pixel at squared distance < tolerance^2 (TorchRay's strict disc)."""
    y, x = point
    x0, y0, x1, y1 = box
    dy = max(y0 - y, 0, y - (y1 - 1))  # distance to the nearest box row (0 inside)
    dx = max(x0 - x, 0, x - (x1 - 1))
    return dy * dy + dx * dx < tolerance * tolerance


def peak(saliency) -> tuple[int, int]:
    """(y, x) of the maximum of an (H, W) map; the first in row-major order on ties (np.argmax)."""
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(saliency)), np.shape(saliency)))


def class_mean_accuracy(hits, labels) -> float:
    """TorchRay's score: the mean over the classes present of each class's hit rate."""
    hits, labels = np.asarray(hits, bool), np.asarray(labels)
    return float(np.mean([hits[labels == c].mean() for c in np.unique(labels)]))


@dataclass
class PointingResult:
    """hits[method]: (N,) bool, one per image, including "centre" (the baseline);
    accuracy[method]: class-mean hit rate; tolerance: the disc radius in pixels."""

    methods: list
    hits: dict
    accuracy: dict
    tolerance: float

    def ranking(self) -> list[str]:
        """Methods and "centre", best first (ties keep the METHODS order)."""
        return sorted(self.accuracy, key=lambda m: -self.accuracy[m])


def pointing_game(net, x, boxes, labels, methods=("gradient", "guided"), tolerance: float | None = None,
                  seed: int = 0) -> PointingResult:  # fmt: skip
    """Play the pointing game with each method on images with one known object each.

    x: (N, C, H, W) in network-input space; boxes: (N, 4) (x0, y0, x1, y1), ends exclusive; labels:
    (N,) the object's class, which is the class explained (as in TorchRay). tolerance: pixels
    (default: ``default_tolerance``).
    """
    methods = check_methods(net, methods)
    x = as_batch(net, x)
    boxes, labels = np.asarray(boxes), np.asarray(labels, np.int64)
    if boxes.shape != (len(x), 4) or labels.shape != (len(x),):
        raise MinicnnError(f"expected boxes (N, 4) and labels (N,) for {len(x)} images")
    h, w = x.shape[2:]
    tolerance = default_tolerance(h, w) if tolerance is None else float(tolerance)
    maps = all_maps(net, x, labels, methods, seed)
    hits = {
        m: np.array([box_hit(peak(s), b, tolerance) for s, b in zip(peak_map(m, maps[m]), boxes)])
        for m in methods
    }
    centre = ((h - 1) // 2, (w - 1) // 2)
    hits["centre"] = np.array([box_hit(centre, b, tolerance) for b in boxes])
    accuracy = {m: class_mean_accuracy(v, labels) for m, v in hits.items()}
    return PointingResult(methods, hits, accuracy, tolerance)
