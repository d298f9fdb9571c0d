"""Turning images into network input and back: the preprocessing conventions of pretrained models.

Images are (N, H, W, C) or (H, W, C) arrays (or (H, W) grayscale) with values in 0..255, uint8 or
float, RGB channel order. Network input is (N, C, H, W) float32. Conventions:

    "caffe"  Keras's VGG16/VGG19 (the original Caffe models of Simonyan & Zisserman 2014, sec. 2.1,
             "subtracting the mean RGB value"): RGB -> BGR, subtract the ImageNet means
             (103.939, 116.779, 123.68) in BGR order, no scaling. Same as
             ``keras.applications.vgg16.preprocess_input``.
    "torch"  torchvision's models: x / 255, subtract mean (0.485, 0.456, 0.406), divide by std
             (0.229, 0.224, 0.225), RGB order.
    "unit"   x / 255 only: the shipped digit models use it.
    "none"   values unchanged; only the layout (NHWC -> NCHW) and dtype change.

``deprocess`` inverts each convention to (N, H, W, C) float in 0..255 for display.
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError

CONVENTIONS = ("caffe", "torch", "unit", "none")
# each convention in a few words, for help texts (the module docstring has the numbers)
CONVENTION_NOTES = {
    "caffe": "Keras VGG16/VGG19: BGR, ImageNet mean subtracted",
    "torch": "torchvision: /255, ImageNet mean and std",
    "unit": "/255",
    "none": "raw 0..255 pixels",
}
RGB_ONLY = ("caffe", "torch")  # conventions defined for 3-channel RGB images only
BGR_ORDER = ("caffe",)  # conventions whose network input has the channels in BGR order

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


def _check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise MinicnnError(f"unknown preprocessing {convention!r}: expected one of {', '.join(CONVENTIONS)}")
    return convention


def _check_channels(channels: int, convention: str) -> None:
    if convention in RGB_ONLY and channels != 3:
        raise MinicnnError(f"{convention!r} preprocessing expects 3 channels (RGB), got {channels}")
    if channels not in (1, 3):
        raise MinicnnError(f"expected 1 (grayscale) or 3 (RGB) channels, got {channels}")


def preprocess(images, convention: str = "caffe", dtype=np.float32) -> np.ndarray:
    """Images (N, H, W, C), (H, W, C) or (H, W), values 0..255 -> network input (N, C, H, W).

    convention: "caffe", "torch", "unit" or "none" (see the module docstring); grayscale (C = 1)
    works with "unit" and "none". Returns a new C-contiguous array of ``dtype`` (float32).
    The arithmetic is done in float64 and rounded once, so it matches the references to the last bit
    of float32 as closely as possible.
    """
    _check_convention(convention)
    x = np.asarray(images)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise MinicnnError(f"expected a numeric image array, got dtype {x.dtype}")
    if x.ndim == 2:
        x = x[None, :, :, None]
    elif x.ndim == 3:
        x = x[None]
    elif x.ndim != 4:
        raise MinicnnError(f"expected images (N, H, W, C), (H, W, C) or (H, W), got shape {tuple(x.shape)}")
    _check_channels(x.shape[3], convention)
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise MinicnnError("images contain NaN or Inf")
    if convention != "none" and (x.min() < 0 or x.max() > 255):
        raise MinicnnError(
            f"expected pixel values in 0..255 for {convention!r} preprocessing, "
            f"got {x.min():.4g}..{x.max():.4g}"
        )
    if convention == "caffe":
        x = x[..., ::-1] - np.array(CAFFE_MEAN_BGR)
    elif convention == "torch":
        x = (x / 255.0 - np.array(TORCH_MEAN)) / np.array(TORCH_STD)
    elif convention == "unit":
        x = x / 255.0
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=dtype)


def deprocess(x, convention: str = "caffe", clip: bool = True) -> np.ndarray:
    """Network input (N, C, H, W) or (C, H, W) -> images (N, H, W, C) or (H, W, C), float32 0..255.

    The exact inverse of ``preprocess`` for the same convention (up to float rounding). With
    ``clip`` (the default, for display) values are clipped to 0..255; visualisations such as
    gradients or optimised inputs leave that range. Arrays on the GPU are copied to the host.
    """
    _check_convention(convention)
    x = to_numpy(x)
    if x.ndim not in (3, 4):
        raise MinicnnError(f"expected (N, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    single = x.ndim == 3
    x = np.asarray(x, dtype=np.float64)
    if single:
        x = x[None]
    _check_channels(x.shape[1], convention)
    x = x.transpose(0, 2, 3, 1)
    if convention == "caffe":
        x = (x + np.array(CAFFE_MEAN_BGR))[..., ::-1]
    elif convention == "torch":
        x = (x * np.array(TORCH_STD) + np.array(TORCH_MEAN)) * 255.0
    elif convention == "unit":
        x = x * 255.0
    if clip:
        x = np.clip(x, 0.0, 255.0)
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x[0] if single else x
