"""Incremental inference for occlusion (Nakandala, Kumar & Papakonstantinou, SIGMOD 2019).

An occluder changes only the activations inside its receptive field, which grows layer by layer. So
instead of re-running the whole network on every occluded copy of an image, we carry, for each
occluder position b, only the changed rectangle of the current feature map:

    patch P (B, C, h, w) at top-left corner (r0[b], c0[b]); everything outside equals the clean pass.

A conv or pool layer (kernel k, stride s, padding p) changes the output rows
ceil((r0 + p - k + 1) / s) ... floor((r0 + h - 1 + p) / s); we recompute exactly those (the same h_out
for every b, the window shifted inward at the borders), reading the input rows they need from the clean
activation and pasting the changed patch over it. ReLU and dropout act on the patch. Once the changed
region covers most of the map (``full_above`` of its area), or at the first layer that mixes all
positions (Flatten, GlobalAvgPool2D, Dense), the patches are pasted into full maps and the rest of the
network runs normally. The results equal the full recomputation up to float rounding (the same sums,
summed in another order).
"""

from __future__ import annotations

import numba
import numpy as np

from minicnn.backend import get_xp
from minicnn.kernels.maxpool import maxpool_forward
from minicnn.layers.conv import conv2d_forward


@numba.njit(cache=True)
def _paste(dst, patch, r, c):
    """dst (B, C, H, W)[b, :, r[b]:, c[b]:] = patch (B, C, h, w)[b], clipped to dst's borders."""
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


def paste(dst, patch, r, c):
    """Write each patch[b] into dst[b] at (r[b], c[b]), clipped; dst (B, C, H, W), patch (B, C, h, w)."""
    xp = get_xp(dst)
    if xp is np:
        _paste(dst, np.ascontiguousarray(patch), np.asarray(r, np.int64), np.asarray(c, np.int64))
        return dst
    for b in range(len(dst)):  # GPU: a short loop of slice copies, no host round trip of data
        y0, x0 = max(int(r[b]), 0), max(int(c[b]), 0)
        y1, x1 = min(int(r[b]) + patch.shape[2], dst.shape[2]), min(int(c[b]) + patch.shape[3], dst.shape[3])
        dst[b, :, y0:y1, x0:x1] = patch[
            b, :, y0 - int(r[b]) : y1 - int(r[b]), x0 - int(c[b]) : x1 - int(c[b])
        ]
    return dst


def _affected(start, length, k, s, p, size_out):
    """Output index range [lo, lo + n) changed by inputs [start, start + length), for each b.

    start: (B,) ints. Returns (lo (B,), n) with a common n; lo shifted inward so lo + n <= size_out.
    """
    lo = np.maximum(-((k - 1 - p - start) // s), 0)  # ceil((start + p - k + 1) / s)
    hi = np.minimum((start + length - 1 + p) // s, size_out - 1)
    n = int((hi - lo).max()) + 1
    return np.clip(lo, 0, size_out - n), n


def _crop(clean, pad, starts_r, starts_c, h, w):
    """Crops (B, C, h, w) of clean (1, C, H, W) zero-padded by ``pad``, at padded coordinates (r, c)."""
    xp = get_xp(clean)
    src = clean[0]
    if pad:
        src = xp.pad(src, ((0, 0), (pad, pad), (pad, pad)))
    rows = xp.asarray(starts_r)[:, None] + xp.arange(h)[None, :]  # (B, h)
    cols = xp.asarray(starts_c)[:, None] + xp.arange(w)[None, :]  # (B, w)
    out = src[:, rows[:, :, None], cols[:, None, :]]  # (C, B, h, w)
    return xp.ascontiguousarray(out.transpose(1, 0, 2, 3))


def clean_outputs(net, image) -> dict:
    """Every layer's output for the unoccluded ``image`` (C, H, W): layer name -> (1, ...) array."""
    net.forward(image[None])
    return dict(net.outputs)


def incremental_scores(net, image, positions, size: int, fill, full_above: float = 0.6, clean=None):
    """Scores of ``image`` (C, H, W) under square occluders, recomputing only what each one changes.

    positions: [(y, x)] top-left corners (a square may be cut by the border); fill: (C,) occluder
    value per channel in network-input space. Returns (len(positions), K) scores, equal to the
    full forward pass of the occluded images up to float rounding. clean: ``clean_outputs(net,
    image)``, computed here when not given (pass it when scoring one image in several batches);
    ``full_above`` is the fraction of a map's area above which the changed region is recomputed
    as a whole map.
    """
    xp = get_xp(image)
    c, h, w = image.shape
    ys = np.array([p[0] for p in positions], np.int64)
    xs = np.array([p[1] for p in positions], np.int64)
    bsz = len(positions)
    # The changed region of the input: the square, moved inward where the border cuts it, so that
    # every position has the same h x w; the part of it the occluder misses keeps the image's values.
    ph, pw = min(size, h), min(size, w)
    r0, c0 = np.clip(ys, 0, h - ph), np.clip(xs, 0, w - pw)
    patch = _crop(image[None], 0, r0, c0, ph, pw)
    value = xp.asarray(fill, dtype=image.dtype)
    occluder = xp.broadcast_to(value[None, :, None, None], (bsz, c, size, size))
    paste(patch, occluder, ys - r0, xs - c0)

    if clean is None:
        clean = clean_outputs(net, image)
    clean_in = image[None]
    for i, layer in enumerate(net.layers):  # noqa: B007 (i is where the full pass resumes)
        kind = layer.kind
        if kind in ("ReLU", "Dropout"):
            patch, _ = layer.forward(patch)
        elif kind in ("Conv2D", "MaxPool2D"):
            kh, kw = layer.kernel_size
            pad = layer.padding if kind == "Conv2D" else 0
            out_h, out_w = clean[layer.name].shape[2:]
            o_r, nh = _affected(r0, patch.shape[2], kh, layer.stride, pad, out_h)
            o_c, nw = _affected(c0, patch.shape[3], kw, layer.stride, pad, out_w)
            if nh * nw > full_above * out_h * out_w:
                break
            # input rows o*s - pad ... o*s - pad + (n-1)*s + k, i.e. from o*s in padded coordinates
            hin, win = (nh - 1) * layer.stride + kh, (nw - 1) * layer.stride + kw
            crop = _crop(clean_in, pad, o_r * layer.stride, o_c * layer.stride, hin, win)
            paste(crop, patch, r0 + pad - o_r * layer.stride, c0 + pad - o_c * layer.stride)
            if kind == "Conv2D":
                patch, _ = conv2d_forward(crop, layer.weight, layer.bias, layer.stride, 0)
            else:
                patch, _ = maxpool_forward(crop, kh, kw, layer.stride)
            r0, c0 = o_r, o_c
        else:
            break
        clean_in = clean[layer.name]
    else:
        return patch  # the whole network was spatial: its "scores" are the last map
    # Paste the patches into full maps and finish with the ordinary forward pass.
    full = xp.repeat(clean_in, bsz, axis=0)
    paste(full, patch, r0, c0)
    for layer in net.layers[i:]:
        full, _ = layer.forward(full)
    return full
