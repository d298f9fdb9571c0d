"""What the gradient tools share: the input batch, the target classes and the one-hot signal.

Every tool takes ``target`` as a class index (the same for all images), a list of indices (one per
image), or ``"predicted"`` (each image's highest score). Scores are the unnormalised class scores
the network's forward returns, before any softmax (Simonyan et al. 2013, sec. 3).
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp, to_numpy
from minicnn.errors import MinicnnError


def as_batch(net, x):
    """An (N, C, H, W) batch of the network's dtype from x.

    x: an (N, C, H, W) array, one (C, H, W) image, or a list of (C, H, W) images of the same size.
    Floating inputs are cast to ``net.dtype``; the engine checks finiteness and the device.
    """
    if isinstance(x, (list, tuple)):
        if not x:
            raise MinicnnError("expected at least one image, got an empty list")
        shapes = sorted({tuple(getattr(a, "shape", ())) for a in x})
        if len(shapes) > 1:
            raise MinicnnError(
                "images in a batch must have the same (C, H, W) size; got " + ", ".join(map(str, shapes))
            )
        xp = get_xp(x[0])
        x = xp.stack([xp.asarray(a) for a in x])
    if not hasattr(x, "ndim"):
        raise MinicnnError(f"expected an image array (N, C, H, W), got {type(x).__name__}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise MinicnnError(f"expected images (N, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    if x.dtype != net.dtype and np.issubdtype(x.dtype, np.floating):
        x = x.astype(net.dtype)
    net.check_input(x)
    return x


def resolve_targets(target, scores) -> np.ndarray:
    """Target classes (N,) int64 for scores (N, K): an int, a list of N ints, or "predicted"."""
    scores = to_numpy(scores)
    n, k = scores.shape
    if isinstance(target, str):
        if target != "predicted":
            raise MinicnnError(
                f"target must be a class index, a list of indices or 'predicted', got {target!r}"
            )
        return scores.argmax(axis=1).astype(np.int64)
    if np.isscalar(target):
        target = [target] * n
    arr = np.asarray(target)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise MinicnnError(f"target must be a class index, a list of indices or 'predicted', got {target!r}")
    if len(arr) != n:
        raise MinicnnError(f"expected one target per image ({n}), got {len(arr)}")
    bad = arr[(arr < 0) | (arr >= k)]
    if bad.size:
        raise MinicnnError(f"target {int(bad[0])} out of range: the network has {k} classes (0..{k - 1})")
    return arr.astype(np.int64)


def one_hot(targets, like):
    """dy (N, K) shaped and typed like the scores ``like``: 1 at each row's target, 0 elsewhere."""
    xp = get_xp(like)
    dy = xp.zeros_like(like)
    dy[xp.arange(len(targets)), xp.asarray(targets)] = 1
    return dy


def forward_record(net, x, record=None, keep: str = "all"):
    """The record of a full forward pass over x: ``record`` when the caller already ran it (the
    CLI runs one to print predictions), else a new one keeping ``keep`` ("input-gradient": a tool
    that reads only the scores and the input gradient under the named rules; minicnn/record.py).
    x: the batch from ``as_batch``."""
    if record is None:
        return net.run(x, keep=keep)
    if record.input is not x or record.names != net.names:
        raise MinicnnError("record= must be the record of a full forward pass over the same x")
    return record
