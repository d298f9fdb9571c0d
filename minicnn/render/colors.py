"""Colour maps for scalar maps: sequential heat maps, diverging maps, and one colour per class.

The tables come from the ``cmap`` package (maintained, no matplotlib needed); this module only
normalises values and looks them up. Simonyan et al. (2013, fig. 2) show saliency as a
single-channel map; a perceptually uniform sequential map (inferno) keeps its ordering without
inventing edges.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from minicnn.errors import MinicnnError


@lru_cache(maxsize=16)
def _lut(name: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of the colormap ``name`` (any name ``cmap`` knows)."""
    import cmap

    try:
        table = cmap.Colormap(name).lut(256)[:, :3]
    except Exception as exc:  # cmap raises ValueError/KeyError for unknown names
        raise MinicnnError(f"unknown colormap {name!r}: expected a name from the cmap package") from exc
    return np.clip(np.round(table * 255), 0, 255).astype(np.uint8)


def _as_map(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise MinicnnError(f"expected a 2-D map (H, W), got shape {values.shape}")
    return np.where(np.isfinite(values), values, 0.0)


def heatmap(values, cmap: str = "inferno", lo: float | None = None, hi: float | None = None):
    """Colour a 2-D map with a sequential colormap.

    values: (H, W) float. ``lo``/``hi`` default to the map's min and max, so the full colour range
    is used (a constant map is drawn in the lowest colour). Returns (H, W, 3) uint8.
    """
    v = _as_map(values)
    lo = float(v.min()) if lo is None else float(lo)
    hi = float(v.max()) if hi is None else float(hi)
    scaled = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    index = np.clip(np.round(scaled * 255), 0, 255).astype(np.intp)
    return _lut(cmap)[index]


def diverging(values, cmap: str = "colorbrewer:RdBu_r", limit: float | None = None):
    """Colour a signed 2-D map so that zero is the neutral middle colour.

    values: (H, W) float; ``limit`` (default max |values|) maps to the ends of the colormap. Used
    for signed gradients and score differences (occlusion), where the sign is the message.
    Returns (H, W, 3) uint8.
    """
    v = _as_map(values)
    limit = float(np.abs(v).max()) if limit is None else float(limit)
    limit = limit if limit > 0 else 1.0
    return heatmap(v, cmap, lo=-limit, hi=limit)


def class_colors(n: int, cmap: str = "tab10") -> np.ndarray:
    """(n, 3) uint8 distinct colours for class labels (cycling a qualitative colormap)."""
    import cmap as cmap_pkg

    colors = np.asarray(cmap_pkg.Colormap(cmap).color_stops.color_array)[:, :3]
    colors = np.clip(np.round(colors * 255), 0, 255).astype(np.uint8)
    return colors[np.arange(n) % len(colors)]
