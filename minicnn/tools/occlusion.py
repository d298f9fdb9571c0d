"""Occlusion sensitivity (Zeiler & Fergus 2013, sec. 4.2): slide a square over the image and watch
the class score fall when the object is hidden.

At each occluder position the image is re-scored; the result holds, per position, the target score,
the target probability, the most probable class and its probability (the paper's fig. 7 panels b-e),
and a pixel attribution map defined as in Captum's ``Occlusion``: for each pixel, the mean over the
windows that cover it of S(x) - S(x occluded). The positions are Captum's grid: top-left corners
0, stride, 2 * stride, ... up to the first one whose square reaches the border, so the last square
in a row or column may be cut by the border and every pixel is covered when stride <= size (pixels
no window covers, when stride > size, get 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from minicnn.backend import get_xp, to_numpy
from minicnn.errors import MinicnnError
from minicnn.layers.softmax import softmax
from minicnn.tools.incremental import incremental_scores
from minicnn.tools.targets import as_batch, forward_record, resolve_targets

FILLS = ("grey", "zero", "mean")
SIZE_FRACTION = 2 / 7  # default occluder side: 8 pixels on the 28x28 digits, 64 on 224x224
STRIDE_FRACTION = 1 / 14  # default step: 2 pixels on the digits, 16 on 224x224: 11x11 positions either way
GREY_PIXEL = 127.5  # mid-grey on the 0..255 scale, before the network's preprocessing


@dataclass
class OcclusionResult:
    """Occlusion maps for N images; every array is NumPy (host memory).

    score, prob, top_prob: (N, Py, Px) float; top_class: (N, Py, Px) int64 — per occluder position
    (row i, column j has its top-left corner at (ys[i], xs[j])). attribution: (N, H, W) float64,
    mean of base_score - score over the windows covering each pixel. base_score, base_prob: (N,)
    scores and probabilities of the unoccluded images; targets (N,); fill: (N, C) the occluder's
    value per channel, in network-input space.
    """

    score: np.ndarray
    prob: np.ndarray
    top_class: np.ndarray
    top_prob: np.ndarray
    attribution: np.ndarray
    base_score: np.ndarray
    base_prob: np.ndarray
    targets: np.ndarray
    ys: np.ndarray
    xs: np.ndarray
    size: int
    stride: int
    fill: np.ndarray


def fill_values(net, x, fill) -> np.ndarray:
    """The occluder value per image and channel, (N, C) float64, in network-input space.

    "zero": 0. "mean": each image's per-channel mean. A number: that value. "grey": a mid-grey
    pixel (127.5 of 255) passed through the network's preprocessing ``net.meta["preprocess"]``
    (for "caffe" that is close to 0, the mean pixel); without a known preprocessing, the midpoint
    of the batch's value range.
    """
    n, c = x.shape[:2]
    if isinstance(fill, (int, float, np.integer, np.floating)) and not isinstance(fill, bool):
        return np.full((n, c), float(fill))
    if fill == "zero":
        return np.zeros((n, c))
    if fill == "mean":
        return to_numpy(x.mean(axis=(2, 3))).astype(np.float64)
    if fill == "grey":
        convention = net.meta.get("preprocess")
        from minicnn.io.preprocess import CONVENTIONS, preprocess

        if convention in CONVENTIONS:
            pixel = np.full((1, 1, c), GREY_PIXEL)
            return np.tile(preprocess(pixel, convention, dtype=np.float64)[0, :, 0, 0], (n, 1))
        xh = to_numpy(x)
        return np.full((n, c), (float(xh.min()) + float(xh.max())) / 2)
    raise MinicnnError(f"fill must be one of {', '.join(FILLS)} or a number, got {fill!r}")


def score_occluded(net, image, positions, size: int, fill):
    """Class scores of one image under occluders: image (C, H, W), positions [(y, x)] top-left
    corners, fill (C,) -> (len(positions), K) scores in one batched forward pass.

    This is the step an incremental implementation replaces (only the receptive fields touched by
    the occluder change); everything else in ``occlusion`` stays.
    """
    xp = get_xp(image)
    batch = xp.repeat(image[None], len(positions), axis=0)
    value = xp.asarray(fill, dtype=image.dtype)[:, None, None]
    for b, (y, x) in enumerate(positions):
        batch[b, :, y : y + size, x : x + size] = value
    return net.run(batch).output()


def occlusion(
    net,
    x,
    target="predicted",
    size: int | None = None,
    stride: int | None = None,
    fill="grey",
    batch_size: int = 64,
    progress: bool = True,
    incremental: bool = True,
    record=None,
) -> OcclusionResult:
    """Occlusion sensitivity maps (Zeiler & Fergus 2013, sec. 4.2) of the target classes.

    Args:
        net: a Sequential or a Graph ending in class scores. x: images (N, C, H, W) in network-input space,
            or one (C, H, W) image. target: class index, list of N indices, or "predicted".
        size: side of the square occluder in pixels; stride: step between positions (see the
            module docstring for the grid, the same as Captum's ``Occlusion``). None: scaled to
            the image by ``default_occluder`` (8 and 2 on 28x28 digits, 64 and 16 on 224x224).
        fill: "grey", "zero", "mean" or a number, in network-input space (see ``fill_values``).
        batch_size: occluded images per forward pass. progress: show a tqdm bar.
        incremental: recompute only the activations each occluder changes (Nakandala et al. 2019,
            minicnn/tools/incremental.py); the same scores as the full recomputation (False) up to
            float rounding, several times faster on deep networks. On a graph network (a ResNet)
            every branch carries its own changed region and a sum reads their union.
        record: the PassRecord of a forward pass over x already run by the caller (reused).

    Returns:
        an OcclusionResult. Probabilities are the softmax of the scores.
    """
    x = as_batch(net, x)
    n, c, h, w = x.shape
    scaled = default_occluder(h)
    size = scaled[0] if size is None else size
    stride = scaled[1] if stride is None else stride
    if not (isinstance(size, (int, np.integer)) and isinstance(stride, (int, np.integer))):
        raise MinicnnError(f"occluder size and stride must be integers, got {size!r} and {stride!r}")
    if size < 1 or stride < 1:
        raise MinicnnError(f"occluder size and stride must be positive, got {size} and {stride}")
    if size > min(h, w):
        raise MinicnnError(f"occluder of {size}x{size} pixels is larger than the {h}x{w} image")
    if batch_size < 1:
        raise MinicnnError(f"batch_size must be positive, got {batch_size}")
    fills = fill_values(net, x, fill)
    passed = forward_record(net, x, record)
    base = passed.output()
    targets = resolve_targets(target, base)
    base_prob = to_numpy(softmax(base, axis=1))[np.arange(n), targets]
    base_score = to_numpy(base)[np.arange(n), targets].astype(np.float64)
    ys, xs = grid_positions(h, size, stride), grid_positions(w, size, stride)
    positions = [(int(y), int(xx)) for y in ys for xx in xs]
    p = len(positions)
    score, prob, top_prob = (np.empty((n, p)) for _ in range(3))
    top_class = np.empty((n, p), dtype=np.int64)
    with tqdm(total=n * p, desc="occlusion", unit="position", disable=not progress) as bar:
        for i in range(n):
            # the clean activations incremental inference starts from: image i's part of the
            # forward pass just run (one pass fewer per image than clean_outputs(net, x[i]))
            clean = {name: out[i : i + 1] for name, out in passed.outputs.items()} if incremental else None
            for start in range(0, p, batch_size):
                chunk = positions[start : start + batch_size]
                if incremental:
                    s = incremental_scores(net, x[i], chunk, size, fills[i], clean=clean)
                else:
                    s = score_occluded(net, x[i], chunk, size, fills[i])
                probs = to_numpy(softmax(s, axis=1))
                part = slice(start, start + len(chunk))
                score[i, part] = to_numpy(s[:, int(targets[i])])
                prob[i, part] = probs[:, targets[i]]
                top_class[i, part] = probs.argmax(axis=1)
                top_prob[i, part] = probs.max(axis=1)
                bar.update(len(chunk))
    grid = (n, len(ys), len(xs))
    drop = (base_score[:, None] - score).reshape(grid)
    return OcclusionResult(
        score=score.reshape(grid),
        prob=prob.reshape(grid),
        top_class=top_class.reshape(grid),
        top_prob=top_prob.reshape(grid),
        attribution=window_mean(drop, ys, xs, size, (h, w)),
        base_score=base_score,
        base_prob=base_prob.astype(np.float64),
        targets=targets,
        ys=ys,
        xs=xs,
        size=int(size),
        stride=int(stride),
        fill=fills,
    )


def default_occluder(height: int) -> tuple[int, int]:
    """(size, stride) in pixels for an image ``height`` pixels high: fixed fractions of it, so that
    a 224x224 photo gets the same 11x11 grid of positions as a 28x28 digit (8x8 square, stride 4,
    the digits' old default, meant 3,025 positions and minutes of silence on a 224x224 VGG16 input).
    Zeiler & Fergus (2013, fig. 7) slide a grey square over the whole object on 224x224 images; the
    fractions here are ours."""
    return max(1, round(height * SIZE_FRACTION)), max(1, round(height * STRIDE_FRACTION))


def grid_positions(length: int, size: int, stride: int) -> np.ndarray:
    """Top-left corners 0, stride, ... of the occluder along one axis: ceil((length - size) / stride)
    + 1 of them, the last square possibly cut by the border (as Captum's Occlusion counts them)."""
    return stride * np.arange(-(-(length - size) // stride) + 1)


def window_mean(values, ys, xs, size: int, shape):
    """Spread per-window values (N, Py, Px) over their size x size squares and average per pixel.

    -> (N, H, W): for each pixel, the mean of the values of the windows covering it (0 if none).
    One vectorised add per offset inside the window (size^2 adds), not one per pixel.
    """
    n = len(values)
    total = np.zeros((n, *shape))
    count = np.zeros(shape)
    for dy in range(size):
        keep_y = ys + dy < shape[0]  # the squares of the last row may be cut by the border
        for dx in range(size):
            keep_x = xs + dx < shape[1]
            rows, cols = np.ix_(ys[keep_y] + dy, xs[keep_x] + dx)
            total[:, rows, cols] += values[:, keep_y][:, :, keep_x]
            count[rows, cols] += 1
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)
