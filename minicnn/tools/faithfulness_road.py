"""ROAD: Remove And Debias (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for
Attribution Methods", sec. 4), without retraining.

Removed pixels are not set to a constant (a constant leaks the removed shape to the classifier,
which is what ROAD fixes) but imputed: each removed pixel takes the weighted mean of its eight
neighbours, direct neighbours weighing 1/6 and diagonal ones 1/12, with neighbours outside the
image left out; the removed pixels' values are the solution of that sparse linear system (one per
channel), plus Gaussian noise of standard deviation ``noise`` (the authors' 0.01). Orders: MoRF
(most relevant first: a faithful map makes accuracy fall fast) and LeRF (least relevant first: it
should stay high).

At each fraction f of the pixels, floor(f * H * W) pixels are removed, counted from the start of the
order at every fraction (not cumulatively perturbed), as the authors and Quantus' ``ROAD`` do. The
curve is the target's probability; ``correct`` says whether the argmax is still the target (the
accuracy the paper plots is its mean over images). The noise comes from ``seed``; with noise 0 the
result is deterministic and equals Quantus 0.6's ``ROAD`` (tests/tools/test_faithfulness_quantus.py).
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.seeding import make_rng
from minicnn.tools.faithfulness import (
    FaithfulnessResult,
    _prepare,
    check_output,
    pixel_order,
    target_values,
    trapezoid_auc,
)

ORDERS = ("morf", "lerf")
DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
ROAD_NOISE = 0.01

# (dy, dx, weight): the eight neighbours of a pixel in the imputation (Rong et al. 2022, sec. 4)
NEIGHBOURS = (
    (-1, -1, 1 / 12), (-1, 0, 1 / 6), (-1, 1, 1 / 12), (0, -1, 1 / 6),
    (0, 1, 1 / 6), (1, -1, 1 / 12), (1, 0, 1 / 6), (1, 1, 1 / 12),
)  # fmt: skip


def linear_imputation(image, removed) -> np.ndarray:
    """Noise-free linear imputation: image (C, H, W), removed (H, W) bool -> (C, H, W) float64 with
    every removed pixel equal to the weighted mean of its neighbours inside the image (kept ones at
    their values, removed ones at their own imputed values). Some pixel must be kept: every group of
    removed pixels then touches a kept one and the system has one solution."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    image = np.asarray(image, dtype=np.float64)
    c, h, w = image.shape
    removed = np.asarray(removed, dtype=bool).reshape(h * w)
    ids = np.flatnonzero(removed)
    out = image.reshape(c, h * w).copy()
    if len(ids) == 0:
        return out.reshape(c, h, w)
    if len(ids) == h * w:
        raise MinicnnError("ROAD cannot impute an image with every pixel removed; use fractions below 1")
    unknown = np.full(h * w, -1, dtype=np.int64)
    unknown[ids] = np.arange(len(ids))
    ys, xs = np.divmod(ids, w)
    diagonal = np.zeros(len(ids))
    rhs = np.zeros((len(ids), c))
    rows, cols, vals = [], [], []
    for dy, dx, weight in NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        p = np.flatnonzero(inside)  # the unknowns that have this neighbour
        q = ny[p] * w + nx[p]
        diagonal[p] += weight  # sum of the weights of the neighbours that exist
        gone = removed[q]
        rows.append(p[gone])
        cols.append(unknown[q[gone]])
        vals.append(np.full(int(gone.sum()), -weight))
        np.add.at(rhs, p[~gone], weight * out[:, q[~gone]].T)
    # (sum of weights) v_p - sum_{removed q} w_q v_q = sum_{kept q} w_q x_q
    rows = np.concatenate(rows + [np.arange(len(ids))])
    cols = np.concatenate(cols + [np.arange(len(ids))])
    vals = np.concatenate(vals + [diagonal])
    a = coo_matrix((vals, (rows, cols)), shape=(len(ids), len(ids))).tocsc()
    solution = spsolve(a, rhs).reshape(len(ids), c)
    out[:, ids] = solution.T
    return out.reshape(c, h, w)


def road(net, x, maps, target="predicted", fractions=DEFAULT_FRACTIONS, order="morf", noise=ROAD_NOISE,
         seed=0, output="probability", batch_size=64, record=None) -> FaithfulnessResult:  # fmt: skip
    """ROAD curves (Rong et al. 2022): for each fraction, the map's first pixels (``order`` "morf":
    largest values first, "lerf": smallest first) removed by noisy linear imputation.

    x: (N, C, H, W) or (C, H, W); maps (N, H, W) or (N, C, H, W) (summed over channels); fractions:
    increasing values in [0, 1). Returns a FaithfulnessResult with ``curves`` (N, F) the target's
    probability (or score), ``correct`` (N, F) whether it is still the argmax, ``auc`` the trapezoid
    area over the fractions given.
    """
    if order not in ORDERS:
        raise MinicnnError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 1 or not len(fractions) or (fractions < 0).any() or (fractions >= 1).any():
        raise MinicnnError(f"fractions must be values in [0, 1), got {fractions.tolist()}")
    if not np.isfinite(noise) or noise < 0:
        raise MinicnnError(f"noise must be a non-negative number, got {noise!r}")
    check_output(output)
    x, xh, maps, targets = _prepare(net, x, maps, target, record)
    n, c, h, w = xh.shape
    ranked = pixel_order(maps, most_relevant_first=order == "morf")
    rng = make_rng(seed)
    removed_counts = np.floor(fractions * h * w + 1e-9).astype(np.int64)
    images = np.empty((n, len(fractions), c, h, w))
    for i in range(n):
        for f, count in enumerate(removed_counts):
            mask = np.zeros(h * w, dtype=bool)
            mask[ranked[i, :count]] = True
            imputed = linear_imputation(xh[i], mask)
            if noise:
                imputed.reshape(c, -1)[:, mask] += noise * rng.standard_normal((c, int(count)))
            images[i, f] = imputed
    flat = images.reshape(n * len(fractions), c, h, w)
    flat_targets = np.repeat(targets, len(fractions))
    curves = np.empty(len(flat))
    predicted = np.empty(len(flat), dtype=np.int64)
    for first in range(0, len(flat), batch_size):
        part = slice(first, first + batch_size)
        scores = net.run(net.xp.asarray(flat[part], dtype=net.dtype)).output()
        curves[part] = target_values(scores, flat_targets[part], output)
        predicted[part] = np.asarray(scores.argmax(axis=1).tolist())
    curves = curves.reshape(n, len(fractions))
    correct = predicted.reshape(n, len(fractions)) == targets[:, None]
    settings = {"order": order, "noise": float(noise), "seed": seed, "imputation": "noisy linear"}
    return FaithfulnessResult("road", fractions, curves, trapezoid_auc(fractions, curves), targets, output,
                              settings, correct)  # fmt: skip
