"""Faithfulness by perturbation: change the pixels a map ranks first and watch the class score.

Four curves share one engine (``perturbation_curve``): an image starts as ``start``, the pixels are
taken in the map's order, and after ``counts[s]`` of them the image holds ``finish`` there. Every
point of every curve is one image in a batched forward pass.

- Deletion (Petsiuk et al. 2018, "RISE", sec. 4.1): start from the image, replace the most relevant
  pixels by **zero in network-input space** (the RISE authors' substrate, ``torch.zeros_like`` on the
  normalised tensor), one row's worth of pixels (W) per step; a faithful map makes the probability
  fall fast, so a *lower* area is better.
- Insertion (same section): start from a **blurred** copy of the image and put the most relevant
  pixels back; a *higher* area is better. The blur is RISE's: an 11x11 kernel whose weights are the
  Gaussian mass over 11 equal bins of [-5, 5] standard deviations (sigma 1.1 pixels), zero-padded
  (``rise_blur``).
- Pixel flipping (Bach et al. 2015, sec. 4; Samek et al. 2017, "most relevant first"): replace the
  most relevant pixels, ``step`` at a time (default one), by a baseline value; the default is the
  image's minimum ("black", as Quantus' ``PixelFlipping`` computes it).

Conventions (each a stated choice; ``tests/tools/test_faithfulness_quantus.py`` checks them against
Quantus 0.6 and against the RISE formulas):

- A map is (N, H, W); an (N, C, H, W) attribution is summed over channels first. A pixel's channels
  are changed together. The order is the map's values as given, largest first (pass ``abs(map)`` to
  rank by magnitude); ties keep pixel order (a stable sort), so the order is reproducible.
- The curve includes the unperturbed image: ``fractions`` = counts / (H*W), from 0 to 1. Quantus'
  PixelFlipping curve starts after the first step, so its curve is ours without the first point.
- The curve's value is the target class's softmax probability (``output="probability"``, RISE's and
  Quantus' default) or its score before softmax (``output="score"``).
- AUC: the trapezoid rule over ``fractions``, so 1.0 is a curve that stays at probability 1. With
  equal steps this is RISE's ``(sum - first / 2 - last / 2) / (S - 1)``; Quantus' AUC is
  ``numpy.trapz(curve, dx=1)`` over its points (one per step, unnormalised): with S - 1 equal steps
  ``quantus = (S - 1) * ours - (curve[0] + curve[1]) / 2``.

- Region perturbation (Samek et al. 2017, sec. III): the same with non-overlapping squares ranked
  by their summed relevance, one square per point (``region_perturbation``).

ROAD lives in ``faithfulness_road.py``, completeness in ``faithfulness_completeness.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.layers.softmax import softmax
from minicnn.tools.targets import as_batch, forward_record, resolve_targets

OUTPUTS = ("probability", "score")
RISE_BLUR_SIZE = 11  # RISE's kernel: 11 taps covering [-5, 5] standard deviations
RISE_BLUR_RANGE = 5.0


@dataclass
class FaithfulnessResult:
    """One metric's curves for N images (host NumPy arrays).

    metric: "deletion" | "insertion" | "pixel_flipping" | "road"; fractions (S,) float64: share of
    the pixels changed at each point (first 0 for the perturbation curves); curves (N, S) float64:
    the target's probability (or score, see ``output``) at each point; auc (N,) float64: trapezoid
    area over ``fractions``; targets (N,) int64; correct (N, S) bool where the metric counts
    predictions (ROAD: the argmax is still the target), else None; settings: what was used.
    """

    metric: str
    fractions: np.ndarray
    curves: np.ndarray
    auc: np.ndarray
    targets: np.ndarray
    output: str
    settings: dict = field(default_factory=dict)
    correct: np.ndarray | None = None


def check_maps(x, maps) -> np.ndarray:
    """maps (N, H, W), or (N, C, H, W) summed over channels, for images x (N, C, H, W): float64 on
    the host; one MinicnnError when the shapes do not match or a value is not finite."""
    maps = to_numpy(maps).astype(np.float64)
    if maps.ndim == 4:
        maps = maps.sum(axis=1)
    n, _, h, w = x.shape
    if maps.shape != (n, h, w):
        raise MinicnnError(
            f"expected maps (N, H, W) = {(n, h, w)} for images {tuple(x.shape)}, got {maps.shape}"
        )
    if not np.isfinite(maps).all():
        raise MinicnnError("maps hold NaN or infinite values")
    return maps


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise MinicnnError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    return output


def pixel_order(maps, most_relevant_first: bool = True) -> np.ndarray:
    """Pixel indices (N, H*W) int64 into the flattened (H, W) grid, by the map's value: largest
    first (most relevant first, MoRF) or smallest first (LeRF); ties keep pixel order."""
    flat = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    return np.argsort(-flat if most_relevant_first else flat, axis=1, kind="stable")


def step_counts(pixels: int, step: int) -> np.ndarray:
    """Pixels changed at each point of a curve: 0, step, 2 step, ..., pixels (the last step may be
    shorter), (ceil(pixels / step) + 1,) int64."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise MinicnnError(f"step must be a positive number of pixels, got {step!r}")
    return np.minimum(np.arange(math.ceil(pixels / step) + 1, dtype=np.int64) * int(step), pixels)


def trapezoid_auc(fractions, curves) -> np.ndarray:
    """Area under curves (N, S) over the points fractions (S,) by the trapezoid rule: (N,) float64."""
    f = np.asarray(fractions, dtype=np.float64)
    c = np.asarray(curves, dtype=np.float64)
    return ((c[:, 1:] + c[:, :-1]) * np.diff(f)[None]).sum(axis=1) / 2


def target_values(scores, targets, output: str) -> np.ndarray:
    """scores (B, K) -> (B,) float64: the target's softmax probability or its score."""
    s = to_numpy(scores).astype(np.float64)
    if output == "probability":
        s = softmax(s, axis=1)
    return s[np.arange(len(s)), targets]


def perturbation_curve(net, start, finish, order, counts, targets, output="probability", batch_size=64):
    """The engine of every curve: image i at point s holds ``finish[i]`` at its first ``counts[s]``
    pixels of ``order[i]`` and ``start[i]`` elsewhere.

    start, finish: (N, C, H, W) host arrays; order: (N, H*W) int64 (``pixel_order``); counts (S,)
    int64; targets (N,) int64. Returns (curves (N, S) float64, predicted (N, S) int64: each point's
    argmax). The N*S images are run ``batch_size`` at a time.
    """
    n, c, h, w = start.shape
    rank = np.empty_like(order)
    rank[np.arange(n)[:, None], order] = np.arange(h * w)[None]  # rank[i, p]: where pixel p comes
    s_count = len(counts)
    curves = np.empty((n, s_count))
    predicted = np.empty((n, s_count), dtype=np.int64)
    for first in range(0, n * s_count, batch_size):
        job = np.arange(first, min(first + batch_size, n * s_count))
        img, point = job // s_count, job % s_count
        changed = (rank[img] < counts[point][:, None]).reshape(len(job), 1, h, w)
        batch = np.where(changed, finish[img], start[img])
        scores = net.run(net.xp.asarray(batch, dtype=net.dtype)).output()
        curves[img, point] = target_values(scores, targets[img], output)
        predicted[img, point] = to_numpy(scores).argmax(axis=1)
    return curves, predicted


def _prepare(net, x, maps, target, record):
    """(x batch, x on the host float64, maps (N, H, W) float64, targets (N,) int64)."""
    x = as_batch(net, x)
    maps = check_maps(x, maps)
    rec = forward_record(net, x, record)
    targets = resolve_targets(target, rec.output())
    return x, to_numpy(x).astype(np.float64), maps, targets


def _curve(metric, net, xh, finish_or_start, maps, targets, step, output, batch_size, settings, insert=False):
    n, c, h, w = xh.shape
    counts = step_counts(h * w, w if step is None else step)
    order = pixel_order(maps)
    start, finish = (finish_or_start, xh) if insert else (xh, finish_or_start)
    curves, _ = perturbation_curve(net, start, finish, order, counts, targets, output, batch_size)
    fractions = counts / (h * w)
    settings = {**settings, "step": int(counts[1] - counts[0]) if len(counts) > 1 else h * w}
    return FaithfulnessResult(
        metric, fractions, curves, trapezoid_auc(fractions, curves), targets, output, settings
    )


def deletion(net, x, maps, target="predicted", step=None, output="probability", batch_size=64, record=None):
    """Deletion curve (Petsiuk et al. 2018, sec. 4.1): the most relevant pixels set to zero in
    network-input space, ``step`` pixels per point (default W, one row's worth, as RISE's 224 on
    224x224 images). Lower AUC: more faithful.

    x: (N, C, H, W) or (C, H, W); maps: (N, H, W) or (N, C, H, W) (summed over channels), ranked
    largest first; target: class index, list of N or "predicted". Returns a FaithfulnessResult.
    """
    x, xh, maps, targets = _prepare(net, x, maps, target, record)
    check_output(output)
    zeros = np.zeros_like(xh)
    return _curve("deletion", net, xh, zeros, maps, targets, step, output, batch_size, {"baseline": "zero"})


def insertion(net, x, maps, target="predicted", step=None, output="probability", batch_size=64, record=None):
    """Insertion curve (Petsiuk et al. 2018, sec. 4.1): start from RISE's blurred image
    (``rise_blur``) and put the most relevant pixels back, ``step`` per point (default W). Higher
    AUC: more faithful. Arguments as ``deletion``."""
    x, xh, maps, targets = _prepare(net, x, maps, target, record)
    check_output(output)
    blurred = rise_blur(xh)
    sigma = 2 * RISE_BLUR_RANGE / RISE_BLUR_SIZE
    settings = {"baseline": f"blur {RISE_BLUR_SIZE}x{RISE_BLUR_SIZE}, sigma {sigma:.2f} px"}
    return _curve(
        "insertion", net, xh, blurred, maps, targets, step, output, batch_size, settings, insert=True
    )


def pixel_flipping(net, x, maps, target="predicted", step=1, baseline="black", output="probability",
                   batch_size=64, record=None):  # fmt: skip
    """Pixel flipping, most relevant first (Bach et al. 2015, sec. 4; Samek et al. 2017, sec. III):
    the most relevant pixels replaced by ``baseline``, ``step`` per point (default 1: H*W forward
    passes per image). baseline: "black" (each image's minimum over all its values, Quantus'
    meaning) or a number in network-input space. Lower AUC: more faithful. Other arguments as
    ``deletion``."""
    x, xh, maps, targets = _prepare(net, x, maps, target, record)
    check_output(output)
    settings = {"baseline": baseline}
    return _curve(
        "pixel_flipping", net, xh, _fill(xh, baseline), maps, targets, step, output, batch_size, settings
    )


def _fill(xh, baseline) -> np.ndarray:
    """The replacement values shaped like xh: "black" (each image's minimum over all its values, as
    Quantus computes it) or a number."""
    if isinstance(baseline, str):
        if baseline != "black":
            raise MinicnnError(f"baseline must be 'black' or a number, got {baseline!r}")
        return np.broadcast_to(xh.min(axis=(1, 2, 3), keepdims=True), xh.shape)
    if isinstance(baseline, (int, float, np.integer, np.floating)) and not isinstance(baseline, bool):
        return np.full_like(xh, float(baseline))
    raise MinicnnError(f"baseline must be 'black' or a number, got {baseline!r}")


def patch_pixel_order(maps, patch: int, most_relevant_first: bool = True) -> np.ndarray:
    """Pixel indices (N, H*W) int64 that take the non-overlapping patch x patch squares in the order
    of their summed map value (largest sum first, or smallest with ``most_relevant_first=False``;
    ties in row-major patch order), each square's pixels together in row-major order. H and W must
    be multiples of ``patch``."""
    maps = np.asarray(maps, dtype=np.float64)
    n, h, w = maps.shape
    if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < 1:
        raise MinicnnError(f"patch must be a positive number of pixels, got {patch!r}")
    if h % patch or w % patch:
        raise MinicnnError(f"patch {patch} must divide the image's {h}x{w} pixels")
    gh, gw = h // patch, w // patch
    sums = maps.reshape(n, gh, patch, gw, patch).sum(axis=(2, 4)).reshape(n, -1)
    ranked = np.argsort(-sums if most_relevant_first else sums, axis=1, kind="stable")  # (N, patches)
    py, px = np.divmod(ranked, gw)  # each ranked patch's row and column in the grid
    dy, dx = np.divmod(np.arange(patch * patch), patch)  # offsets inside a patch, row-major
    rows = py[:, :, None] * patch + dy[None, None]
    cols = px[:, :, None] * patch + dx[None, None]
    return (rows * w + cols).reshape(n, -1)


def region_perturbation(net, x, maps, target="predicted", patch=8, order="morf", baseline="black",
                        output="probability", batch_size=64, record=None):  # fmt: skip
    """Region perturbation (Samek et al. 2017, sec. III; Quantus' ``RegionPerturbation``): the
    non-overlapping patch x patch squares in the order of their summed relevance ("morf": largest
    first; "lerf": smallest first) replaced by ``baseline`` ("black": each image's minimum, or a
    number), one square per point. The curve is the target's probability (or score) with the
    unperturbed image first; Samek et al.'s AOPC is the mean drop ``curves[:, :1] - curves``,
    which is Quantus' curve (without our first point). H and W must be multiples of ``patch``."""
    if order not in ("morf", "lerf"):
        raise MinicnnError(f"order must be one of morf, lerf, got {order!r}")
    x, xh, maps, targets = _prepare(net, x, maps, target, record)
    check_output(output)
    n, c, h, w = xh.shape
    pixels = patch_pixel_order(maps, patch, most_relevant_first=order == "morf")
    counts = step_counts(h * w, patch * patch)
    curves, _ = perturbation_curve(net, xh, _fill(xh, baseline), pixels, counts, targets, output, batch_size)
    fractions = counts / (h * w)
    settings = {"baseline": baseline, "patch": patch, "order": order}
    auc = trapezoid_auc(fractions, curves)
    return FaithfulnessResult("region_perturbation", fractions, curves, auc, targets, output, settings)


def rise_kernel(size: int = RISE_BLUR_SIZE, spread: float = RISE_BLUR_RANGE) -> np.ndarray:
    """RISE's blur kernel (size, size) float64, summing to 1: the outer product of the standard
    normal's mass over ``size`` equal bins of [-spread, spread]."""
    edges = np.linspace(-spread, spread, size + 1)
    cdf = np.array([0.5 * (1 + math.erf(e / math.sqrt(2))) for e in edges])
    mass = np.diff(cdf)
    kernel = np.outer(mass, mass)
    return kernel / kernel.sum()


def rise_blur(x) -> np.ndarray:
    """x (N, C, H, W) -> the same shape, float64: each channel convolved with ``rise_kernel`` with
    zero padding (the RISE authors pad the convolution with zeros, so borders darken)."""
    from scipy.ndimage import correlate

    kernel = rise_kernel()[None, None]
    # the kernel is symmetric, so correlation is convolution
    return correlate(np.asarray(x, dtype=np.float64), kernel, mode="constant", cval=0.0)
