"""Turn network-space arrays into displayable RGB images: channel order, contrast, size.

Zeiler & Fergus (2013, fig. 2) and Springenberg et al. (2015, fig. 1) show DeconvNet and guided
reconstructions "contrast normalised": the signal has no natural zero-to-one range and its sign
matters, so it is centred on zero (grey) and scaled so that its strong values fill the range.
MNIST digits are 28x28; nearest-neighbour upscaling keeps their pixels visible instead of blurred.
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError


def to_rgb(image) -> np.ndarray:
    """Convert an image to (H, W, 3) uint8.

    image: (H, W) grey, (C, H, W) with C in {1, 3} (the engine's layout) or (H, W, C) with C in
    {1, 3}; float values are taken to lie in [0, 1] (clipped), uint8 values are kept.
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):
        a = np.moveaxis(a, 0, -1)  # CHW -> HWC
    elif a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] in (1, 3) and a.shape[1] > 3:
        a = np.moveaxis(a, 0, -1)  # ambiguous tiny shapes: prefer the engine's CHW
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise MinicnnError(f"expected an image (H, W), (C, H, W) or (H, W, C), got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.round(np.clip(np.nan_to_num(a.astype(np.float64)), 0.0, 1.0) * 255).astype(np.uint8)
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else np.ascontiguousarray(a)


def contrast_normalize(signal, percentile: float = 99.5) -> np.ndarray:
    """Zero-centred contrast normalisation of a reconstruction, for display.

    signal: (C, H, W) or (H, W) float, any range. Subtracts the mean, divides by the ``percentile``
    of |signal| (100 = the maximum; a high percentile stops one pixel from washing out the rest)
    and maps [-1, 1] to [0, 1], clipped: zero is mid-grey. Returns float64 of the same shape.
    (Zeiler & Fergus 2013, sec. 2; Springenberg et al. 2015, sec. 3.4.)
    """
    s = np.nan_to_num(np.asarray(signal, dtype=np.float64))
    s = s - s.mean()
    scale = float(np.percentile(np.abs(s), percentile)) if s.size else 0.0
    if scale <= 0:
        scale = float(np.abs(s).max()) or 1.0
    return np.clip(0.5 + 0.5 * s / scale, 0.0, 1.0)


def upscale(image, factor: int | None = None, min_size: int = 224) -> np.ndarray:
    """Nearest-neighbour upscale of (H, W, 3) or (H, W) by an integer factor.

    With ``factor=None`` the factor is the largest integer that keeps the longer side <=
    ``min_size`` (at least 1), so 28x28 digits become 224x224 and large photographs are left alone.
    """
    a = np.asarray(image)
    if a.ndim not in (2, 3):
        raise MinicnnError(f"expected an image (H, W) or (H, W, 3), got shape {a.shape}")
    if factor is None:
        factor = max(1, min_size // max(a.shape[0], a.shape[1]))
    if int(factor) < 1:
        raise MinicnnError(f"upscale factor must be a positive integer, got {factor}")
    factor = int(factor)
    return np.repeat(np.repeat(a, factor, axis=0), factor, axis=1)


def resize_map(values, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D float map to ``size`` (H, W); used to lay coarse maps on images."""
    from PIL import Image

    v = np.asarray(values, dtype=np.float32)
    if v.shape == tuple(size):
        return v.astype(np.float64)
    resized = Image.fromarray(v, mode="F").resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(resized, dtype=np.float64)
