"""The similarity measures of Adebayo et al. (2018, "Sanity Checks for Saliency Maps", sec. 3.1).

How alike two saliency maps are, as the paper measures it, with well-kept implementations rather than
our own: Spearman's rank correlation (SciPy) of the maps with and without absolute value, the
structural similarity index SSIM (Wang et al. 2004, scikit-image) and the Pearson correlation of
the maps' histogram-of-oriented-gradients features (Dalal & Triggs 2005, scikit-image's ``hog``).

Maps are signed (N, H, W) arrays, one per image (channels already summed, see sanity_methods.py).
"abs" variants compare |m|; SSIM and HOG take |m| scaled to [0, 1] by its maximum, as the paper
normalises maps before showing or comparing them.

NOTE: a correlation with a constant map is undefined (a randomised network can give an all-zero
Grad-CAM). It is taken as 1 when the two maps are equal and 0 otherwise (nothing in common to rank).
"""

from __future__ import annotations

import numpy as np

METRICS = ("spearman_abs", "spearman", "ssim", "hog")
METRIC_TITLES = {
    "spearman_abs": "Spearman rank correlation (abs)",
    "spearman": "Spearman rank correlation (no abs)",
    "ssim": "SSIM",
    "hog": "HOG feature correlation",
}


def unit_abs(m) -> np.ndarray:
    """|m| / max |m| in [0, 1], float64 (H, W); an all-zero map stays zero."""
    a = np.abs(np.asarray(m, np.float64))
    top = a.max()
    return a / top if top > 0 else a


def _undefined(a, b) -> float | None:
    """1.0 or 0.0 when a correlation of a and b is undefined (a constant input), else None."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return None


def spearman(a, b) -> float:
    """Spearman's rank correlation (scipy.stats.spearmanr) of two same-shaped maps, flattened."""
    from scipy.stats import spearmanr

    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    fixed = _undefined(a, b)
    return fixed if fixed is not None else float(spearmanr(a, b).statistic)


def ssim(a, b) -> float:
    """SSIM (skimage.metrics.structural_similarity, its defaults: 7x7 uniform window) of |a|, |b|
    each scaled to [0, 1]; data_range 1."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(unit_abs(a), unit_abs(b), data_range=1.0))


def hog_features(m) -> np.ndarray:
    """HOG features (skimage.feature.hog, 9 orientations, 8x8-pixel cells, 3x3-cell blocks) of |m|
    scaled to [0, 1]; maps smaller than 24 pixels use cells of a third of their side."""
    from skimage.feature import hog

    u = unit_abs(m)
    cell = min(8, max(1, min(u.shape) // 3))
    return hog(u, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(3, 3), feature_vector=True)


def hog_correlation(a, b) -> float:
    """Pearson correlation (scipy.stats.pearsonr) of the HOG features of two maps."""
    from scipy.stats import pearsonr

    fa, fb = hog_features(a), hog_features(b)
    fixed = _undefined(fa, fb)
    return fixed if fixed is not None else float(pearsonr(fa, fb).statistic)


def similarity(a, b, metric: str) -> float:
    """One metric of METRICS between two (H, W) maps."""
    if metric == "spearman_abs":
        return spearman(np.abs(a), np.abs(b))
    if metric == "spearman":
        return spearman(a, b)
    if metric == "ssim":
        return ssim(a, b)
    if metric == "hog":
        return hog_correlation(a, b)
    raise ValueError(f"unknown metric {metric!r}: expected one of {', '.join(METRICS)}")


def similarities(a, b) -> dict:
    """Every metric, image by image: a, b (N, H, W) -> {metric: (N,) float64}."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return {m: np.array([similarity(ai, bi, m) for ai, bi in zip(a, b)]) for m in METRICS}
