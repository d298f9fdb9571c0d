"""The papers' figures, composed from the picture primitives: one function per kind of figure.

Each takes the display image (H, W, 3) uint8 and the tool's arrays, upscales tiny inputs with
nearest neighbour (28x28 digits would be invisible otherwise); returns one (H, W, 3) uint8 picture.
Every heat map carries a colour bar with its range and unit, every map of categories a legend, and
``title`` (written above the figure, wrapped to its width) should name the model, the layer or unit,
the target and the method, so that a figure read alone still says what it shows.
"""

from __future__ import annotations

import numpy as np

from minicnn.render.boxes import BLUE, GREEN, draw_boxes
from minicnn.render.colors import class_colors, diverging, heatmap
from minicnn.render.grid import _text_size, grid, hstack, label_above
from minicnn.render.images import contrast_normalize, resize_map, to_rgb, upscale
from minicnn.render.keys import with_colorbar, with_legend
from minicnn.render.overlay import overlay

MIN_SIZE = 224  # tiny images are upscaled by an integer factor to about this size


def _factor(shape) -> int:
    return max(1, MIN_SIZE // max(shape[0], shape[1]))


def _big(image, factor: int) -> np.ndarray:
    return upscale(to_rgb(image), factor)


def titled(picture, title: str, size: int = 12) -> np.ndarray:
    """``picture`` with ``title`` above it, wrapped at spaces to the picture's width."""
    if not title:
        return picture
    width = picture.shape[1] - 8
    lines, line = [], ""
    for word in title.split(" "):
        trial = f"{line} {word}".strip()
        if line and _text_size(trial, size)[0] > width:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    for text in reversed(lines):
        picture = label_above(picture, text, size)
    return picture


def _heat(values, f: int, unit: str, cmap: str = "inferno", lo=None, hi=None) -> np.ndarray:
    """A heat map panel, upscaled by f, with its colour bar (the map's range, or lo..hi) and unit."""
    v = np.asarray(values, dtype=np.float64)
    lo = float(v.min()) if lo is None else lo
    hi = float(v.max()) if hi is None else hi
    return with_colorbar(upscale(heatmap(v, cmap, lo=lo, hi=hi), f), lo, hi, cmap, unit)


def saliency_figure(image, saliency, title: str = "", unit: str = "max_c |dS/dI|") -> np.ndarray:
    """Input | saliency heat map with its colour bar | overlay (Simonyan et al. 2013, sec. 3, fig. 2).

    image: (H, W, 3) uint8; saliency: (H, W) float, e.g. max over channels of |dS_c/dI|, drawn from
    0; a map with negative values (a signed gradient) is drawn with a diverging map around 0 (red:
    raising the pixel raises the score) and its magnitude is overlaid.
    """
    f = _factor(image.shape)
    sal = np.asarray(saliency, dtype=np.float64)
    if sal.min() < 0:
        limit = float(np.abs(sal).max())
        heat = with_colorbar(
            upscale(diverging(sal, limit=limit), f), -limit, limit, "colorbrewer:RdBu_r", unit
        )
    else:
        heat = _heat(sal, f, unit, lo=0.0)
    panels = [_big(image, f), heat, upscale(overlay(image, np.abs(sal)), f)]
    return titled(hstack(panels, ["input", "saliency", "overlay (top 1% at full colour)"]), title)


def map_figure(image, maps: dict, title: str = "", unit: str = "a.u.") -> np.ndarray:
    """Input, then for each coarse map (upsampled bilinearly) its heat map with a colour bar and
    its overlay.

    maps: label -> (h, w) float map, e.g. {"CAM": ..., "Grad-CAM": ...} (Zhou et al. 2016, fig. 1;
    Selvaraju et al. 2017, fig. 1).
    """
    f = _factor(image.shape)
    panels, labels = [_big(image, f)], ["input"]
    for label, values in maps.items():
        v = resize_map(values, image.shape[:2])
        panels += [_heat(v, f, f"{label} ({unit})"), upscale(overlay(image, v), f)]
        labels += [label, f"{label} overlay"]
    return titled(hstack(panels, labels), title)


def reconstruction_figure(image, signals: dict, title: str = "") -> np.ndarray:
    """Input beside the reconstructions of each mode, zero-centred and contrast-normalised
    (mid-grey = 0, brighter / darker = positive / negative signal).

    signals: mode name -> (C, H, W) image-space signal, channels in RGB order (Zeiler & Fergus 2013,
    fig. 2; Springenberg et al. 2015, fig. 1).
    """
    f = _factor(image.shape)
    panels = [_big(image, f)] + [_big(contrast_normalize(s), f) for s in signals.values()]
    picture = hstack(panels, ["input", *(f"{m} (grey = 0)" for m in signals)])
    return titled(picture, title)


def occlusion_figure(
    image, prob_map, class_map, class_names, target_name: str, attribution=None, title: str = ""
) -> np.ndarray:
    """Input | probability of the target class per occluder position | most probable class
    (legend) | (optionally) the pixel attribution, mean score drop over the windows covering each
    pixel (diverging bar: red, hiding the pixel lowers the score).

    The probability panel spans the map's own lowest to highest value, labelled on its colour bar:
    a confident network's map often stays within a few hundredths of 1, and a fixed 0..1 scale then
    draws it in one flat colour.

    prob_map: (H, W) in [0, 1]; class_map: (H, W) int class indices: the occluder-grid values
    spread to pixels by ``positions_to_pixels`` (Zeiler & Fergus 2013, fig. 7 (b) and (e));
    attribution: (H, W), signed.
    """
    f = _factor(image.shape)
    prob = _heat(prob_map, f, f"p({target_name})")
    classes = np.asarray(class_map, dtype=np.intp)
    colors = class_colors(max(len(class_names), int(classes.max()) + 1))
    present = [int(c) for c in np.unique(classes)]
    legend = [(colors[c], f"{c}: {class_names[c].split(',')[0]}") for c in present[:12]]
    if len(present) > 12:
        legend.append((np.full(3, 255, np.uint8), f"... {len(present) - 12} more"))
    class_rgb = with_legend(upscale(colors[classes], f), legend)
    panels = [_big(image, f), prob, class_rgb]
    labels = ["input", f"p({target_name}) when hidden here", "top class when hidden here"]
    if attribution is not None:
        a = np.asarray(attribution, dtype=np.float64)
        limit = float(np.abs(a).max()) or 1.0
        drop = upscale(diverging(a, limit=limit), f)
        panels.append(with_colorbar(drop, -limit, limit, "colorbrewer:RdBu_r", "score drop"))
        labels.append("score drop per pixel")
    return titled(hstack(panels, labels), title)


def positions_to_pixels(values, ys, xs, size: int, shape) -> np.ndarray:
    """Spread per-position values (Py, Px) to pixels (H, W) = ``shape``: each pixel takes the value
    of the occluder position whose window centre is nearest (so the map lines up with the image)."""
    values = np.asarray(values)
    cy = np.asarray(ys, dtype=np.float64) + (size - 1) / 2.0
    cx = np.asarray(xs, dtype=np.float64) + (size - 1) / 2.0
    rows = np.abs(np.arange(shape[0])[:, None] - cy[None, :]).argmin(axis=1)
    cols = np.abs(np.arange(shape[1])[:, None] - cx[None, :]).argmin(axis=1)
    return values[rows][:, cols]


def tile_grid(images, labels=None, ncols=None, title: str = "") -> np.ndarray:
    """A labelled grid of (C, H, W) or (H, W, 3) images in [0, 1] or uint8, upscaled if tiny.

    Class models (Simonyan et al. 2013, fig. 1) and maximised units (Erhan et al. 2009, fig. 3).
    """
    tiles = [to_rgb(im) for im in images]
    f = _factor(tiles[0].shape) if max(tiles[0].shape[:2]) < 112 else 1
    f = max(1, f // 2)  # grids hold many tiles: half the single-image size is enough
    return titled(grid([upscale(t, f) for t in tiles], labels, ncols=ncols), title)


def topk_figure(projections, patches, title: str = "") -> np.ndarray:
    """Top-k DeconvNet projections (left grid) beside their input patches (right grid).

    projections: sequence of (C, h, w) signals in RGB order, each zero-centred and contrast-
    normalised on its own; patches: sequence of images (anything ``to_rgb`` accepts), in the same
    order (Zeiler & Fergus 2013, fig. 2: strongest first, row by row).
    """
    proj = [to_rgb(contrast_normalize(p)) for p in projections]
    patch = [to_rgb(p) for p in patches]
    f = max(1, 96 // max(patch[0].shape[:2]))
    ncols = int(np.ceil(np.sqrt(len(proj))))
    left = grid([upscale(p, f) for p in proj], ncols=ncols, pad=2)
    right = grid([upscale(p, f) for p in patch], ncols=ncols, pad=2)
    return titled(hstack([left, right], ["projections (grey = 0)", "input patches"]), title)


def localization_figure(image, saliency, mask, box, true_box=None, title: str = "") -> np.ndarray:
    """Input with the box found (green; ground truth blue) | saliency with its colour bar |
    segmentation mask (white = object).

    Simonyan et al. (2013, sec. 3.1, fig. 3). box, true_box: (x0, y0, x1, y1), exclusive ends.
    """
    f = _factor(image.shape)
    boxes, colors = [box], [GREEN]
    if true_box is not None:
        boxes, colors = [true_box, box], [BLUE, GREEN]
    boxed = draw_boxes(_big(image, f), boxes, colors, scale=f)
    seg = to_rgb(np.asarray(mask, dtype=np.float64))
    labels = ["found (green), true (blue)" if true_box is not None else "box found", "saliency",
              "mask (white: object)"]  # fmt: skip
    panels = [boxed, _heat(saliency, f, "|dS/dI|", lo=0.0), upscale(seg, f)]
    return titled(hstack(panels, labels), title)
