"""Incremental inference for occlusion (Nakandala, Kumar & Papakonstantinou, SIGMOD 2019).

An occluder changes only the activations inside its receptive field, which grows layer by layer. So
instead of re-running the whole network on every occluded copy of an image, we carry, for each
occluder position b, only the changed rectangle of the current feature map:

    patch P (B, C, h, w) at top-left corner (r0[b], c0[b]); everything outside equals the clean pass.

Each layer says which inputs one output reads (``layer.window()``, minicnn/geometry.py). A windowed
layer (kernel k, stride s, padding p) changes the output rows ceil((r0 + p - k + 1) / s) ...
floor((r0 + h - 1 + p) / s); we recompute exactly those (the same h_out for every b, the window shifted
inward at the borders) with the layer's own forward (``forward_padded``, so its lowering is kept),
reading the input rows they need from the clean activation and pasting the changed patch over it.
Pointwise layers (ReLU, dropout) act on the patch. Once the changed region covers most of the map
(``full_above`` of its area), or at the first layer that mixes all positions (window None: Flatten,
global pooling, Dense), the patches are pasted into full maps and the rest of the network runs
normally; so does a layer whose padding a zero-padded crop cannot stand for (a max pooling padded
with -inf refuses ``forward_padded``). The results equal the full recomputation up to float
rounding (the same sums, summed in another order).

The changed rectangle is carried along a chain of layers. A graph (residual blocks) has several
maps alive at once, each with its own changed region: ``chain_only`` says why such a network is
scored by full recomputation instead (tools/occlusion.py).
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError
from minicnn.geometry import POINTWISE
from minicnn.kernels.paste import crop, paste


def _changed_outputs(window, axis, start, length, size_out):
    """(first (B,), count): the outputs along ``axis`` that inputs [start, start + length) change,
    as one common count per batch, each range moved inward so that it ends inside the map.

    A window whose stride exceeds its kernel skips some inputs: an occluder there changes no output.
    The count is then still 1 (one output recomputed from unchanged inputs, equal to the clean one),
    so that the next layer always gets a non-empty patch.
    """
    lo, hi = window.output_span(axis, start, length, size_out)
    count = max(1, int((hi - lo).max()) + 1)
    return np.clip(lo, 0, size_out - count), count


def chain_only(net) -> str | None:
    """None when incremental inference can run ``net``; else the reason, one line (a graph)."""
    if net.is_chain:
        return None
    name = net.meta.get("architecture", "this network")
    return (
        f"incremental occlusion follows a chain of layers and {name} is a graph of layers "
        "(residual blocks): each occluder is scored by a full forward pass"
    )


def clean_outputs(net, image) -> dict:
    """Every layer's output for the unoccluded ``image`` (C, H, W): layer name -> (1, ...) array."""
    return net.run(image[None]).outputs


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
    patch = crop(image[None], 0, r0, c0, ph, pw)
    value = xp.asarray(fill, dtype=image.dtype)
    occluder = xp.broadcast_to(value[None, :, None, None], (bsz, c, size, size))
    paste(patch, occluder, ys - r0, xs - c0)

    if clean is None:
        clean = clean_outputs(net, image)
    clean_in = image[None]
    for i, layer in enumerate(net.layers):  # noqa: B007 (i is where the full pass resumes)
        window = layer.window()
        if window is None:  # the layer mixes all positions: finish with full maps
            break
        if window != POINTWISE:
            (kh, kw), (sh, sw), (pad_h, pad_w) = window
            out_h, out_w = clean[layer.name].shape[2:]
            o_r, nh = _changed_outputs(window, 0, r0, patch.shape[2], out_h)
            o_c, nw = _changed_outputs(window, 1, c0, patch.shape[3], out_w)
            if nh * nw > full_above * out_h * out_w:
                break
            if pad_h != pad_w:
                break  # (no layer pads unevenly today; crop takes one padding)
            # the input rows those outputs read, from o*s in padded coordinates
            hin, win = (nh - 1) * sh + kh, (nw - 1) * sw + kw
            reads = crop(clean_in, pad_h, o_r * sh, o_c * sw, hin, win)
            paste(reads, patch, r0 + pad_h - o_r * sh, c0 + pad_w - o_c * sw)
            try:
                out = layer.forward_padded(reads)  # the layer's own forward (and lowering)
            except MinicnnError:
                # a layer whose padding a zero-padded crop cannot stand for (max pooling pads
                # with -inf) refuses: recompute from it on in full (patch and r0, c0 still
                # describe its input)
                break
            patch = out
            r0, c0 = o_r, o_c
        else:
            patch = layer.forward_padded(patch)
        clean_in = clean[layer.name]
    else:
        return patch  # the whole network was spatial: its "scores" are the last map
    # Paste the patches into full maps and finish with the ordinary forward pass.
    full = xp.repeat(clean_in, bsz, axis=0)
    paste(full, patch, r0, c0)
    for layer in net.layers[i:]:
        full, _ = layer.forward(full)
    return full
