"""Reading image files with Pillow into (H, W, C) uint8 arrays, any mode in, RGB or L out.

The usual evaluation crop of the VGG paper (Simonyan & Zisserman 2014, sec. 3.2, a single central
crop) is: resize so that the shorter side is ``size``, then take the central size x size square.

An image file is untrusted input: its header is read first and an image of more than
``MAX_PIXELS`` pixels is refused before its data is decoded (a 100 KB PNG can declare
100000 x 100000 pixels, 30 GB once decoded); Pillow's own decompression-bomb check becomes the same
one-line error, and a float image holding NaN or infinite values is refused instead of classified.

Only the raster formats in ``FORMATS`` are opened, whatever the file is called: Pillow's other
plugins include PostScript/EPS, which hands the file to Ghostscript (another program, with its own
language), so a PostScript file named ``x.png`` would otherwise run Ghostscript. Anything else, and
an image mode outside ``READABLE_MODES`` (LAB, HSV: Pillow converts LAB to RGB by copying the
bytes, which gives wrong colours), is one line naming what is read.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError

_MODES = ("RGB", "L")
# Pillow format names (Image.open's ``formats``): PNG, JPEG (its opener also gives a camera's
# multi-picture JPEG, "MPO"), BMP, GIF, TIFF, WebP, and PPM for the Netpbm .pbm/.pgm/.ppm files
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
_EXPECTED = "expected PNG, JPEG, BMP, GIF, TIFF, WebP or PGM/PPM"
# the modes whose conversion to RGB and L Pillow computes colorimetrically (or that _to_8bit scales)
READABLE_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "I", "F"}
# 2**27 = 134 million pixels (11585 x 11585): above any camera's output, and 0.4 GB as RGB uint8;
# Pillow's own limit (Image.MAX_IMAGE_PIXELS, 89 million by default) also applies when it is lower
MAX_PIXELS = 2**27


def _to_8bit(img):
    """Integer (I, I;16*) and float (F) images -> mode "L" with values scaled into 0..255.

    Pillow's own conversion clips 16-bit values at 255 instead of scaling them, which turns most
    16-bit photographs white; 16-bit data is therefore scaled by 255 / 65535 here. Mode "I" images
    whose values fit in 0..255 are kept as they are; float images in 0..1 are scaled by 255.
    """
    a = np.asarray(img, dtype=np.float64)
    if not np.isfinite(a).all():
        raise MinicnnError("the image holds NaN or infinite values (a float image)")
    if img.mode.startswith("I;16") or (img.mode == "I" and a.max(initial=0) > 255):
        a = a * (255.0 / 65535.0)
    elif img.mode == "F" and a.max(initial=0) <= 1.0:
        a = a * 255.0
    from PIL import Image

    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def _flatten_alpha(img):
    """Composite images with transparency over white (what a viewer shows), return RGB."""
    from PIL import Image

    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _resize_crop(img, size):
    """Resize to cover ``size`` (h, w), keeping the aspect ratio, then take the central crop."""
    from PIL import Image

    th, tw = size
    w, h = img.size
    scale = max(th / h, tw / w)
    nw, nh = max(tw, round(w * scale)), max(th, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - tw) // 2, (nh - th) // 2
    return img.crop((left, top, left + tw, top + th))


def _check_pixels(size, path) -> None:
    """MinicnnError when an image header declares more than MAX_PIXELS pixels (nothing decoded yet)."""
    w, h = size
    if w * h > MAX_PIXELS:
        raise MinicnnError(f"{path}: image too large ({w} x {h} pixels; at most {MAX_PIXELS} are read)")


def load_image(path, size=None, mode: str = "RGB") -> np.ndarray:
    """Read the image file at ``path`` -> (H, W, 3) uint8 RGB, or (H, W, 1) uint8 for mode "L".

    Any Pillow mode is accepted (1, L, LA, P, RGB, RGBA, CMYK, I, I;16, F, ...): transparency is
    composited over white, 16-bit and float images are scaled into 0..255, EXIF orientation is
    applied. size: None keeps the image as it is; an int s resizes the shorter side to s and takes
    the central s x s crop; a pair (h, w) resizes to cover h x w and takes the central crop.
    A missing file or one that is not an image raises MinicnnError naming the file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if mode not in _MODES:
        raise MinicnnError(f"unknown image mode {mode!r}: expected 'RGB' or 'L'")
    if size is not None:
        pair = (size, size) if np.isscalar(size) else tuple(size)
        if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in pair):
            raise MinicnnError(f"image size must be a positive int or (height, width), got {size!r}")
    path = Path(path)
    if not path.is_file():
        raise MinicnnError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():
            # Pillow warns between MAX_IMAGE_PIXELS and twice that, and raises above
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=FORMATS) as img:
                _check_pixels(img.size, path)
                img.load()
                img = ImageOps.exif_transpose(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MinicnnError(
            f"{path}: image too large (over Pillow's {Image.MAX_IMAGE_PIXELS}-pixel limit)"
        ) from None
    except MinicnnError:
        raise
    except UnidentifiedImageError:
        raise MinicnnError(f"{path}: not a readable image file ({_EXPECTED})") from None
    except (OSError, SyntaxError, ValueError, MemoryError, EOFError) as exc:
        raise MinicnnError(f"{path}: not a readable image file ({type(exc).__name__})") from None
    if img.mode not in READABLE_MODES and not img.mode.startswith("I;16"):
        raise MinicnnError(
            f"{path}: image mode {img.mode} is not read (expected an RGB, grey, palette, CMYK, YCbCr, "
            "16-bit or float image)"
        )
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        try:
            img = _to_8bit(img)
        except MinicnnError as exc:
            raise MinicnnError(f"{path}: {exc}") from None
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        img = _flatten_alpha(img)
    img = img.convert(mode)
    if size is not None:
        img = _resize_crop(img, pair)
    a = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(a[:, :, None] if a.ndim == 2 else a)
