"""A heat map laid over the input image, so one can see which pixels the map points at.

Simonyan et al. (2013, fig. 2) print saliency next to the image; laying it over a grey copy of the
image shows the same map and the object together (as in Zhou et al. 2016, fig. 1, for CAM).
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.render.colors import heatmap
from minicnn.render.images import resize_map, to_rgb


def overlay(image, values, alpha: float = 0.6, cmap: str = "inferno", percentile: float = 99.0) -> np.ndarray:
    """Blend a coloured heat map over a grey version of ``image``.

    image: anything ``to_rgb`` accepts (H, W) / (C, H, W) / (H, W, 3); values: (h, w) float map,
    resized bilinearly to the image when its size differs (CAM maps are coarse). Each pixel's blend
    weight is ``alpha`` times the map value scaled so that its ``percentile`` (and above) is 1, so
    cold regions keep the image visible. NOTE: scaling by the maximum (percentile 100) hides a
    saliency map of a photograph, where a few pixels are far above the rest; the top 1% saturate
    instead. Returns (H, W, 3) uint8.
    """
    if not 0.0 <= alpha <= 1.0:
        raise MinicnnError(f"alpha must lie in [0, 1], got {alpha}")
    rgb = to_rgb(image).astype(np.float64)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise MinicnnError(f"expected a 2-D map (H, W), got shape {values.shape}")
    values = resize_map(values, rgb.shape[:2])
    if not 0.0 < percentile <= 100.0:
        raise MinicnnError(f"percentile must lie in (0, 100], got {percentile}")
    lo, hi = float(values.min()), float(np.percentile(values, percentile))
    if hi <= lo:  # a map flat below its percentile (one hot pixel): scale by the maximum instead
        hi = float(values.max())
    weight = np.clip((values - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(values)
    grey = rgb.mean(axis=2, keepdims=True)  # colour of the map must not mix with the image's
    colour = heatmap(values, cmap, lo=lo, hi=hi).astype(np.float64)  # the same scale as the weight
    w = alpha * weight[:, :, None]
    return np.round((1.0 - w) * grey + w * colour).clip(0, 255).astype(np.uint8)
