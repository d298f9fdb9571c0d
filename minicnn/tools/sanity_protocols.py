"""How two attributions are compared in the sanity checks: three protocols, each stated in full.

A protocol turns one image's attribution (C, H, W), channels kept, into the arrays it compares, and
names the similarity of each comparison. The same maps give different numbers under different
protocols, so every table and figure says which protocol made it.

    minicnn   the channel sum m = sum_c a_c. spearman_abs: Spearman of |m|; spearman: of m; ssim:
              scikit-image's default SSIM (7x7 uniform window) of |m| / max |m|; hog: Pearson
              correlation of HOG features (8-px cells, a third of the side on maps under 24 px).
    adebayo   the preprocessing and measures of Adebayo et al.'s code (adebayoj/sanity_checks_saliency,
              its Inception v3 notebooks, with scikit-image 0.15 and the ``saliency`` package 0.0.4):
              spearman_abs: Spearman of g = sum_c |a_c| scaled by (g - min g) / (p99(g) - min g) and
              clipped to [0, 1]; spearman: of d = sum_c a_c scaled by (d + s) / (2 s), s = |p99(d)|,
              clipped to [-1, 1]; ssim: SSIM of the attribution min-max scaled to [0, 1] over all its
              values (channels kept, float32), Gaussian weights (sigma 1.5, scipy's default truncation:
              13 taps, border of 5 px cropped), sample covariances, data range 2 (scikit-image 0.15 took
              a float image's range as [-1, 1]), averaged over channels; hog: Spearman of the HOG
              features (9 orientations, 16-px cells, 3x3-cell blocks, L2-Hys) of that min-max map;
              not defined below 48 px (NaN), as their code raises there.
    quantus   Quantus' MPRT defaults (Quantus 0.6, ``quantus.MPRT()``): the channel sum (the usage
              Quantus documents), divided by its largest |value| (``normalise_by_max``), then |.|,
              compared by Spearman (``correlation_spearman``). One measure: spearman_abs.

Every protocol adds two numbers about ties (Adebayo et al. rank pixels; ranks break down where many
pixels tie):

    tied          the share of pixels that are exactly zero (every channel) in either attribution:
                  dead ReLUs on a black background make about half the pixels of a digit's gradient
                  map zero, all tied at the lowest rank
    spearman_fg   the protocol's spearman_abs over the other pixels only (the foreground: non-zero
                  in both)

``verdict`` reads spearman_abs, or spearman_fg when the tied share exceeds TIED_SHARE, and says
which it read. A block of pixels tied at the lowest rank in one map is ranked low in the other by
any map that is small off the object (the black background of a digit), so it makes two unrelated
maps look alike (the README's sanity section has the digits' figures).

NOTE: a correlation with a constant input is undefined. It is taken as 1 when the two inputs are
equal and 0 otherwise, in every protocol (sanity_similarity.py).
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.tools import sanity_similarity as sim

PROTOCOLS = {
    "minicnn": "minicnn: channel sum, Spearman of |m| and m, SSIM (7x7 uniform) and HOG (8 px, Pearson) of "
    "|m| / max",
    "adebayo": "Adebayo et al.'s code: sum_c |a_c| clipped at its 99th percentile, SSIM (Gaussian) and HOG "
    "(16 px, Spearman) of the min-max map",
    "quantus": "Quantus MPRT defaults: channel sum / max |.|, abs, Spearman",
}
DEFAULT_PROTOCOL = "minicnn"
MEASURES = {
    "minicnn": ("spearman_abs", "spearman", "ssim", "hog"),
    "adebayo": ("spearman_abs", "spearman", "ssim", "hog"),
    "quantus": ("spearman_abs",),
}
TIE_MEASURES = ("spearman_fg", "tied")
TIED_SHARE = 0.25  # above this share of pixels tied at zero in either map, the verdict reads spearman_fg
PERCENTILE = 99  # the saliency package's clipping percentile (VisualizeImageGrayscale / Diverging)
HOG_CELL = 16  # Adebayo et al.'s pixels_per_cell
SSIM_SIGMA, SSIM_TRUNCATE, SSIM_WINDOW = 1.5, 4.0, 11  # scikit-image 0.15's Gaussian SSIM
SSIM_DATA_RANGE = 2.0  # scikit-image 0.15: dtype_range of a float image, (-1, 1)


def check_protocol(protocol: str) -> str:
    """The protocol's name, checked: one MinicnnError listing the valid names otherwise."""
    if protocol not in PROTOCOLS:
        raise MinicnnError(f"unknown protocol {protocol!r}; expected one of: {', '.join(PROTOCOLS)}")
    return protocol


def measures(protocol: str = DEFAULT_PROTOCOL) -> tuple:
    """Every number a comparison under ``protocol`` gives, in order (its measures, then the ties)."""
    return MEASURES[check_protocol(protocol)] + TIE_MEASURES


# -- Adebayo et al.'s preprocessing ----------------------------------------------------------------


def abs_grayscale(a) -> np.ndarray:
    """(C, H, W) -> (H, W): g = sum_c |a_c|, (g - min g) / (p99(g) - min g) clipped to [0, 1]
    (the saliency package's VisualizeImageGrayscale); a map whose p99 equals its minimum is all 0."""
    g = np.abs(np.asarray(a, np.float64)).sum(axis=0)
    lo, hi = g.min(), np.percentile(g, PERCENTILE)
    return np.clip((g - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(g)


def diverging(a) -> np.ndarray:
    """(C, H, W) -> (H, W): d = sum_c a_c, s = |p99(d)|, (d + s) / (2 s) clipped to [-1, 1] (the
    saliency package's VisualizeImageDiverging); s = 0 gives all 0."""
    d = np.asarray(a, np.float64).sum(axis=0)
    s = abs(np.percentile(d, PERCENTILE))
    return np.clip((d + s) / (2 * s), -1, 1) if s > 0 else np.zeros_like(d)


def min_max(a) -> np.ndarray:
    """(C, H, W) -> (H, W, C) float32: (a - min) / (max - min) over every value, channels last, in
    float32 as Adebayo et al.'s normalize_image; a constant attribution gives all 0."""
    v = np.moveaxis(np.asarray(a), 0, -1).astype(np.float32)
    lo, hi = v.min(), v.max()
    return (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)


def gaussian_ssim(x, y) -> float:
    """SSIM of two (H, W, C) images as scikit-image 0.15's compare_ssim(x, y, gaussian_weights=True,
    multichannel=True) computed it for float images: per channel, means and (sample) covariances
    under a Gaussian of sigma 1.5 (scipy's gaussian_filter, truncate 4, mode 'reflect'), NP = 11^2,
    data range 2, the mean of the SSIM image without its 5-px border; then the mean over channels.
    NaN where the image is under 11 px (their code raises)."""
    from scipy.ndimage import gaussian_filter

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if min(x.shape[:2]) < SSIM_WINDOW:
        return float("nan")
    c1, c2 = (0.01 * SSIM_DATA_RANGE) ** 2, (0.03 * SSIM_DATA_RANGE) ** 2
    norm = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)  # sample covariance, scikit-image's default
    pad = (SSIM_WINDOW - 1) // 2
    scores = []
    for c in range(x.shape[2]):
        a, b = x[..., c], y[..., c]
        f = [
            gaussian_filter(v, SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect")
            for v in (a, b, a * a, b * b, a * b)
        ]
        vx, vy, vxy = norm * (f[2] - f[0] ** 2), norm * (f[3] - f[1] ** 2), norm * (f[4] - f[0] * f[1])
        s = ((2 * f[0] * f[1] + c1) * (2 * vxy + c2)) / ((f[0] ** 2 + f[1] ** 2 + c1) * (vx + vy + c2))
        scores.append(s[pad:-pad, pad:-pad].mean())
    return float(np.mean(scores))


def hog_spearman(x, y) -> float:
    """Spearman of the HOG features (scikit-image, 9 orientations, 16-px cells, 3x3-cell blocks,
    L2-Hys, channels last) of two (H, W, C) images; NaN under 48 px (three cells of 16 px)."""
    from skimage.feature import hog

    if min(np.shape(x)[:2]) < 3 * HOG_CELL:
        return float("nan")
    f = [
        hog(v, pixels_per_cell=(HOG_CELL, HOG_CELL), cells_per_block=(3, 3), channel_axis=-1) for v in (x, y)
    ]
    return sim.spearman(f[0], f[1])


# -- one pair of attributions ----------------------------------------------------------------------


def _abs_map(a, protocol: str) -> np.ndarray:
    """The (H, W) non-negative map whose ranks spearman_abs compares under ``protocol``."""
    if protocol == "adebayo":
        return abs_grayscale(a)
    m = np.abs(np.asarray(a, np.float64).sum(axis=0))
    if protocol == "quantus":
        top = m.max()
        return m / top if top > 0 else m  # normalise_by_max, then abs (the order does not matter here)
    return m


def compare_pair(a, b, protocol: str = DEFAULT_PROTOCOL) -> dict:
    """Every number of ``measures(protocol)`` for one image: a, b (C, H, W) attributions (or (H, W)
    maps, taken as one channel) -> {name: float}."""
    protocol = check_protocol(protocol)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim == 2:
        a, b = a[None], b[None]
    if a.shape != b.shape or a.ndim != 3:
        raise MinicnnError(f"expected two attributions of one shape (C, H, W), got {a.shape} and {b.shape}")
    ua, ub = _abs_map(a, protocol), _abs_map(b, protocol)
    out = {"spearman_abs": sim.spearman(ua, ub)}
    if protocol == "minicnn":
        ma, mb = a.sum(axis=0), b.sum(axis=0)
        out.update(spearman=sim.spearman(ma, mb), ssim=sim.ssim(ma, mb), hog=sim.hog_correlation(ma, mb))
    elif protocol == "adebayo":
        za, zb = min_max(a), min_max(b)
        out.update(
            spearman=sim.spearman(diverging(a), diverging(b)),
            ssim=gaussian_ssim(za, zb),
            hog=hog_spearman(za, zb),
        )
    tied = np.all(a == 0, axis=0) | np.all(b == 0, axis=0)
    out["tied"] = float(tied.mean())
    out["spearman_fg"] = sim.spearman(ua[~tied], ub[~tied]) if (~tied).sum() > 2 else out["spearman_abs"]
    return out


def compare(a, b, protocol: str = DEFAULT_PROTOCOL) -> dict:
    """Image by image: a, b (N, C, H, W) attributions (or (N, H, W) maps) -> {name: (N,) float64}
    for every name of ``measures(protocol)``."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim not in (3, 4):
        raise MinicnnError(f"expected two batches of one shape (N, C, H, W), got {a.shape} and {b.shape}")
    per = [compare_pair(ai, bi, protocol) for ai, bi in zip(a, b)]
    return {k: np.array([p[k] for p in per], np.float64) for k in measures(protocol)}


# -- the verdict -----------------------------------------------------------------------------------


def verdict_measure(tied_share: float) -> str:
    """The measure a verdict reads: spearman_fg where the mean tied share exceeds TIED_SHARE, else
    spearman_abs."""
    return "spearman_fg" if tied_share > TIED_SHARE else "spearman_abs"


def verdict(values: dict, threshold: float) -> tuple[str, float, str]:
    """(measure read, its value, "changed" | "alike") from one cell's means {name: float} (which
    hold spearman_abs, spearman_fg and tied): "changed" when the value is below ``threshold``."""
    name = verdict_measure(values["tied"])
    v = float(values[name])
    return name, v, "changed" if v < threshold else "alike"
