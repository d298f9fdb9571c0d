"""Paste one small patch per batch item into a batch of feature maps, each at its own offset.

    dst[b, :, r[b] + i, c[b] + j] = patch[b, :, i, j]      (clipped to dst's borders)

Incremental occlusion (minicnn/tools/incremental.py) moves the changed rectangle of every occluder
position through the network this way. CPU: one Numba loop, no temporaries. GPU: a short loop of
slice copies over the batch (no host round trip of the data).
"""

from __future__ import annotations

import numba
import numpy as np

from minicnn.backend import get_xp


@numba.njit(cache=True)
def _paste_cpu(dst, patch, r, c):
    n, ch, hh, ww = dst.shape
    h, w = patch.shape[2], patch.shape[3]
    for b in range(n):
        for k in range(ch):
            for i in range(h):
                y = r[b] + i
                if 0 <= y < hh:
                    for j in range(w):
                        xx = c[b] + j
                        if 0 <= xx < ww:
                            dst[b, k, y, xx] = patch[b, k, i, j]


def _paste_gpu(dst, patch, r, c):
    for b in range(len(dst)):
        y0, x0 = max(int(r[b]), 0), max(int(c[b]), 0)
        y1, x1 = min(int(r[b]) + patch.shape[2], dst.shape[2]), min(int(c[b]) + patch.shape[3], dst.shape[3])
        dst[b, :, y0:y1, x0:x1] = patch[
            b, :, y0 - int(r[b]) : y1 - int(r[b]), x0 - int(c[b]) : x1 - int(c[b])
        ]


def paste(dst, patch, r, c):
    """Write each patch[b] into dst[b] at (r[b], c[b]), clipped; dst (B, C, H, W), patch (B, C, h, w),
    r and c (B,) integer offsets (host arrays). Returns dst, changed in place."""
    if get_xp(dst) is np:
        _paste_cpu(dst, np.ascontiguousarray(patch), np.asarray(r, np.int64), np.asarray(c, np.int64))
    else:
        _paste_gpu(dst, patch, r, c)
    return dst
