"""Weakly supervised object localisation from a saliency map (Simonyan et al. 2013, sec. 3.1).

A network trained only on class labels also says where the object is. Following the paper: the
class saliency map gives foreground seeds (pixels above its 95% quantile) and background seeds
(below its 30% quantile); a colour model of each is fitted to the image at the seeds, and a graph
cut (Boykov & Jolly 2001; GrabCut, Rother et al. 2004) segments the image with the seeds as hard
constraints. The object's box is the bounding box of the largest connected component of the
foreground. The max-flow is PyMaxflow's (Boykov-Kolmogorov), not written here.

Colour model: a histogram per seed set in the image's own (intensity or colour) space, the paper's
Gaussian mixture replaced by the simplest density that works for both grayscale and RGB; each
channel is quantised into ``bins`` levels, with add-half smoothing so unseen colours get a finite
cost. Pairwise term: the contrast-sensitive Potts weight smoothness * exp(-||I_p - I_q||^2 / (2
<||I_p - I_q||^2>)) between 4-neighbours, as in GrabCut.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from tqdm.auto import trange

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.kernels.compiled import njit

HARD = 1e9  # capacity of a seed's terminal edge: never cut


class Localization(NamedTuple):
    """boxes (N, 4) int64 (x0, y0, x1, y1), ends exclusive (``image[y0:y1, x0:x1]``);
    masks (N, H, W) bool, the graph-cut foreground (all its components)."""

    boxes: np.ndarray
    masks: np.ndarray


@njit
def label_components(mask):
    """4-connected components of a bool (H, W) mask -> int32 labels (H, W), 0 = background, and
    the component count. Breadth-first search with an explicit queue (one pass over the pixels)."""
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    queue = np.empty(h * w, dtype=np.int64)
    count = 0
    for start in range(h * w):
        sy, sx = start // w, start % w
        if not mask[sy, sx] or labels[sy, sx]:
            continue
        count += 1
        labels[sy, sx] = count
        head, tail = 0, 1
        queue[0] = start
        while head < tail:
            p = queue[head]
            head += 1
            y, x = p // w, p % w
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                ny, nx = y + dy, x + dx
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = count
                    queue[tail] = ny * w + nx
                    tail += 1
    return labels, count


def largest_component_box(mask) -> np.ndarray:
    """(x0, y0, x1, y1) int64, ends exclusive, of the largest 4-connected component of a bool
    (H, W) mask (ties: the component met first in row-major order); the whole image if empty."""
    h, w = mask.shape
    labels, count = label_components(np.ascontiguousarray(mask, dtype=np.bool_))
    if count == 0:
        return np.array([0, 0, w, h], dtype=np.int64)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    ys, xs = np.nonzero(labels == 1 + int(sizes.argmax()))
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.int64)


def box_iou(a, b) -> np.ndarray:
    """Intersection over union of boxes a, b (..., 4) (x0, y0, x1, y1), ends exclusive."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (
        b[..., 3] - b[..., 1]
    )
    return inter / np.maximum(area - inter, 1e-12)


def seeds(saliency_map, fg_quantile: float = 0.95, bg_quantile: float = 0.30):
    """Foreground (> fg quantile) and background (< bg quantile) seeds of one (H, W) saliency map."""
    hi, lo = np.quantile(saliency_map, [fg_quantile, bg_quantile])
    fg = saliency_map > hi
    if not fg.any():  # a flat map: keep its maximum as the one foreground seed
        fg = saliency_map >= saliency_map.max()
    return fg, (saliency_map < lo) & ~fg


def saliency_box(saliency_map, quantile: float = 0.95) -> np.ndarray:
    """The baseline without segmentation: the box of the largest connected component of the
    saliency map (H, W) thresholded at its ``quantile``."""
    return largest_component_box(seeds(saliency_map, quantile, 0.0)[0])


def _colour_codes(image, bins: int):
    """image (C, H, W) -> (H, W) int64 histogram bin of each pixel, each channel cut into ``bins``
    equal levels between the image's min and max."""
    lo = image.min(axis=(1, 2), keepdims=True)
    span = np.maximum(image.max(axis=(1, 2), keepdims=True) - lo, 1e-12)
    q = np.minimum(((image - lo) / span * bins).astype(np.int64), bins - 1)
    codes = np.zeros(image.shape[1:], dtype=np.int64)
    for channel in q:
        codes = codes * bins + channel
    return codes


def cut_costs(image, fg, bg, bins: int = 16, smoothness: float = 1.0):
    """The energy of the segmentation of image (C, H, W) with bool seed masks fg, bg (H, W).

    Returns (cost_fg, cost_bg, right, down), each (H, W) float64: the unary cost of calling each
    pixel foreground / background (-log of the seed histograms' densities) and the weights of the
    edges to the right and lower neighbours (contrast-sensitive Potts; see the module docstring).
    """
    image = np.asarray(image, dtype=np.float64)
    codes = _colour_codes(image, bins)
    nbins = bins ** image.shape[0]
    p_fg = np.bincount(codes[fg], minlength=nbins) + 0.5
    p_bg = np.bincount(codes[bg], minlength=nbins) + 0.5
    cost_fg = -np.log(p_fg / p_fg.sum())[codes]
    cost_bg = -np.log(p_bg / p_bg.sum())[codes]
    dx = ((image[:, :, 1:] - image[:, :, :-1]) ** 2).sum(axis=0)
    dy = ((image[:, 1:, :] - image[:, :-1, :]) ** 2).sum(axis=0)
    beta = 1.0 / (2 * max(np.concatenate([dx.ravel(), dy.ravel()]).mean(), 1e-12))
    right = np.zeros(image.shape[1:])
    down = np.zeros(image.shape[1:])
    right[:, :-1] = smoothness * np.exp(-beta * dx)
    down[:-1, :] = smoothness * np.exp(-beta * dy)
    return cost_fg, cost_bg, right, down


def min_cut(cost_fg, cost_bg, right, down, fg, bg):
    """The foreground mask (H, W) bool of least energy

        E(L) = sum_p cost_(L_p)(p) + sum_(p, q right/down neighbours) w_pq [L_p != L_q]

    with the seeds fg (foreground) and bg (background) fixed: an exact s-t minimum cut, solved by
    PyMaxflow (Boykov-Kolmogorov). Foreground is the source side.
    """
    import maxflow

    g = maxflow.Graph[float]()
    nodes = g.add_grid_nodes(cost_fg.shape)
    g.add_grid_edges(nodes, weights=right, structure=_RIGHT, symmetric=True)
    g.add_grid_edges(nodes, weights=down, structure=_DOWN, symmetric=True)
    # cutting s->p puts p on the sink (background) side and costs cost_bg; p->t costs cost_fg
    source = np.where(fg, HARD, np.where(bg, 0.0, cost_bg))
    sink = np.where(bg, HARD, np.where(fg, 0.0, cost_fg))
    g.add_grid_tedges(nodes, source, sink)
    g.maxflow()
    return ~g.get_grid_segments(nodes)


_RIGHT = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 0]])
_DOWN = np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0]])


def graph_cut(image, fg, bg, bins: int = 16, smoothness: float = 1.0):
    """Segment image (C, H, W) given bool seed masks fg, bg (H, W) -> foreground mask (H, W) bool."""
    return min_cut(*cut_costs(image, fg, bg, bins, smoothness), fg, bg)


def localize(
    net,
    x,
    target="predicted",
    fg_quantile: float = 0.95,
    bg_quantile: float = 0.30,
    bins: int = 4,
    smoothness: float = 0.1,
    saliency_map=None,
    progress: bool = True,
) -> Localization:
    """Boxes and segmentation masks of the target class's object in each image.

    Args:
        net: a Sequential ending in class scores. x: (N, C, H, W) or (C, H, W) in its input space.
        target: a class index, a list of N indices or "predicted" (as mc.saliency takes it).
        fg_quantile, bg_quantile: the seed thresholds on the saliency map (paper: 0.95 and 0.30).
        bins: histogram levels per channel of the colour models.
        smoothness: weight of the pairwise term (0: seeds and colour models alone).
            The defaults (bins 4, smoothness 0.1) were chosen on the first 100 shipped clutter
            canvases and checked on the other 100 (benchmarks/localization.py): coarse bins keep
            the faint clutter out of the digit's colour model, and a strong pairwise term bridges
            the dark gaps between the digit and nearby clutter (the box then grows too big).
        saliency_map: (N, H, W) to use instead of mc.saliency(net, x, target) (e.g. SmoothGrad).
        progress: a tqdm bar of the images on stderr.

    Returns Localization(boxes (N, 4) int64 (x0, y0, x1, y1) exclusive ends, masks (N, H, W) bool).
    """
    from minicnn.tools.saliency import saliency
    from minicnn.tools.targets import as_batch

    if not (0 < bg_quantile < fg_quantile < 1):
        raise MinicnnError(f"expected 0 < bg_quantile < fg_quantile < 1, got {bg_quantile}, {fg_quantile}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or not 2 <= bins <= 256:
        raise MinicnnError(f"bins must be an integer in 2..256, got {bins!r}")
    if not np.isfinite(smoothness) or smoothness < 0:
        raise MinicnnError(f"smoothness must be a finite number >= 0, got {smoothness!r}")
    x = as_batch(net, x)
    if saliency_map is None:
        saliency_map = saliency(net, x, target)
    sal = to_numpy(saliency_map).astype(np.float64)
    if sal.shape != (x.shape[0], *x.shape[2:]):
        raise MinicnnError(f"saliency_map must have shape {(x.shape[0], *x.shape[2:])}, got {sal.shape}")
    images = to_numpy(x)
    boxes = np.zeros((len(x), 4), dtype=np.int64)
    masks = np.zeros(sal.shape, dtype=bool)
    # one graph cut per image (PyMaxflow solves one graph at a time)
    for i in trange(len(x), desc="localize", unit="img", leave=False, disable=not progress):
        fg, bg = seeds(sal[i], fg_quantile, bg_quantile)
        masks[i] = graph_cut(images[i], fg, bg, bins, smoothness)
        boxes[i] = largest_component_box(masks[i])
    return Localization(boxes, masks)
