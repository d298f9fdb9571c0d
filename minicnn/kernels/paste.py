"""Paste one small patch per batch item into a batch of feature maps, each at its own offset, and
its inverse, crop one window per batch item out of a single (zero-padded) map.

    paste:  dst[b, :, r[b] + i, c[b] + j] = patch[b, :, i, j]      (clipped to dst's borders)
    crop:   out[b, :, i, j] = src[0, :, r[b] + i - pad, c[b] + j - pad]   (zero outside src)
    cut:    out[b, :, i, j] = src[b, :, r[b] + i, c[b] + j]        (one window per map of a batch)

Incremental occlusion (minicnn/tools/incremental.py) moves the changed rectangle of every occluder
position through the network this way: at every layer it crops the input rows a patch's outputs
read from the clean activation and pastes the changed patch over them; ``cut`` takes the changed
rectangle back out of a layer run on whole maps (a max pooling padded with -inf). CPU: Numba loops over
(item, channel), no temporaries (cropping with NumPy pads the whole map, gathers with fancy
indexing and transposes: three copies of data that a loop reads once). GPU: the same with array
operations (no host round trip of the data).
"""

from __future__ import annotations

import numba
import numpy as np

from minicnn.backend import get_xp
from minicnn.kernels.compiled import njit


@njit(parallel=True)
def _paste_cpu(dst, patch, r, c):
    n, ch, hh, ww = dst.shape
    h, w = patch.shape[2], patch.shape[3]
    for bk in numba.prange(n * ch):  # each (item, channel) writes only its own map
        b, k = bk // ch, bk % ch
        for i in range(h):
            y = r[b] + i
            if 0 <= y < hh:
                for j in range(w):
                    xx = c[b] + j
                    if 0 <= xx < ww:
                        dst[b, k, y, xx] = patch[b, k, i, j]


@njit(parallel=True)
def _crop_cpu(src, pad, r, c, out):
    ch, hh, ww = src.shape
    n, h, w = out.shape[0], out.shape[2], out.shape[3]
    for bk in numba.prange(n * ch):
        b, k = bk // ch, bk % ch
        for i in range(h):
            y = r[b] + i - pad
            row = out[b, k, i]
            if 0 <= y < hh:
                for j in range(w):
                    xx = c[b] + j - pad
                    row[j] = src[k, y, xx] if 0 <= xx < ww else 0.0
            else:
                row[:] = 0.0


def _paste_gpu(dst, patch, r, c):
    for b in range(len(dst)):
        y0, x0 = max(int(r[b]), 0), max(int(c[b]), 0)
        y1, x1 = min(int(r[b]) + patch.shape[2], dst.shape[2]), min(int(c[b]) + patch.shape[3], dst.shape[3])
        dst[b, :, y0:y1, x0:x1] = patch[
            b, :, y0 - int(r[b]) : y1 - int(r[b]), x0 - int(c[b]) : x1 - int(c[b])
        ]


def _crop_gpu(src, pad, r, c, h, w):
    xp = get_xp(src)
    if pad:
        src = xp.pad(src, ((0, 0), (pad, pad), (pad, pad)))
    rows = xp.asarray(r)[:, None] + xp.arange(h)[None, :]  # (B, h), padded coordinates
    cols = xp.asarray(c)[:, None] + xp.arange(w)[None, :]  # (B, w)
    out = src[:, rows[:, :, None], cols[:, None, :]]  # (C, B, h, w)
    return xp.ascontiguousarray(out.transpose(1, 0, 2, 3))


def crop(src, pad: int, r, c, h: int, w: int):
    """Windows (B, C, h, w) of src (1, C, H, W) zero-padded by ``pad`` on every side, window b with its
    top-left corner at (r[b], c[b]) in padded coordinates (r, c: (B,) host integer arrays), each
    window inside the padded map."""
    src = src[0]
    if get_xp(src) is not np:
        return _crop_gpu(src, pad, r, c, h, w)
    out = np.empty((len(r), src.shape[0], h, w), dtype=src.dtype)
    _crop_cpu(np.ascontiguousarray(src), int(pad), np.asarray(r, np.int64), np.asarray(c, np.int64), out)
    return out


def paste(dst, patch, r, c):
    """Write each patch[b] into dst[b] at (r[b], c[b]), clipped; dst (B, C, H, W), patch (B, C, h, w),
    r and c (B,) integer offsets (host arrays). Returns dst, changed in place."""
    if get_xp(dst) is np:
        _paste_cpu(dst, np.ascontiguousarray(patch), np.asarray(r, np.int64), np.asarray(c, np.int64))
    else:
        _paste_gpu(dst, patch, r, c)
    return dst


def cut(src, r, c, h: int, w: int):
    """Windows (B, C, h, w) of a batch src (B, C, H, W), window b at (r[b], c[b]) inside src[b].

    One slice per item, the same on both devices: it runs once per layer that cannot take a
    zero-padded crop, not once per element."""
    return get_xp(src).stack([src[b, :, r[b] : r[b] + h, c[b] : c[b] + w] for b in range(len(src))])
