"""Incremental inference for occlusion (Nakandala, Kumar & Papakonstantinou, SIGMOD 2019).

An occluder changes only the activations inside its receptive field, which grows layer by layer. So
instead of re-running the whole network on every occluded copy of an image, we carry, for each
occluder position b and each node of the network, only the changed rectangle of its output:

    region: patch P (B, C, h, w) at top-left corner (r[b], c[b]); everything outside equals the
    clean pass (the unoccluded image's activations).

Each layer says which inputs one output reads (``layer.window()``, minicnn/geometry.py). A windowed
layer (kernel k, stride s, padding p) changes the output rows ceil((r + p - k + 1) / s) ...
floor((r + h - 1 + p) / s); we recompute exactly those (the same h_out for every b, the window shifted
inward at the borders) with the layer's own forward (``forward_padded``, so its lowering is kept),
reading the input rows they need from the clean activation and pasting the changed patch over it.
Pointwise layers (ReLU, dropout, a BatchNorm kept as a layer) act on the patch.

A graph (residual blocks) has several maps alive at once, each with its own region; every branch
carries its own. A layer with several inputs (Add) reads the union of its inputs' regions: the
smallest rectangle holding all of them (one size for every b, moved inward at the borders), each
input cut there from its clean map with its own patch pasted over it, then summed. A chain is the
graph in which every node reads the one before it.

A node's output becomes a whole map (no region) where the region would cover most of it
(``full_above`` of its area), where the layer mixes all positions (window None: Flatten, global
pooling, Dense), or where an input is already whole; the nodes after it run normally. A layer whose
padding a zero-padded crop cannot stand for (a max pooling padded with -inf refuses
``forward_padded``) runs on whole maps at its own node, and the rectangle it changes is cut back out
of its output, so the nodes after it stay incremental. The results equal the full recomputation up to
float rounding (the same sums, summed in another order).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError
from minicnn.geometry import POINTWISE
from minicnn.kernels.paste import crop, cut, paste
from minicnn.record import INPUT


class Region(NamedTuple):
    """A node's output under B occluders: ``patch`` (B, C, h, w) placed at rows r[b], columns c[b]
    (host int64 arrays (B,)) over the clean output; r and c None: ``patch`` is the whole output."""

    patch: object
    r: np.ndarray | None = None
    c: np.ndarray | None = None


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


def node_inputs(net) -> dict:
    """Layer name -> the names of the nodes it reads (``"input"``: the network's input); in a chain
    each layer reads the one before it."""
    if not net.is_chain:
        return net.inputs
    names = [INPUT, *net.names]
    return {name: (names[i],) for i, name in enumerate(names[1:])}


def clean_outputs(net, image) -> dict:
    """Every layer's output for the unoccluded ``image`` (C, H, W): layer name -> (1, ...) array."""
    return net.run(image[None]).outputs


def _whole(region: Region, clean):
    """The region pasted over B copies of the clean output: (B, ...) whole outputs."""
    if region.r is None:
        return region.patch
    full = get_xp(clean).repeat(clean, len(region.patch), axis=0)
    return paste(full, region.patch, region.r, region.c)


def _windowed(layer, window, region: Region, clean_in, clean_out, full_above: float) -> Region:
    """The region of a windowed layer's output that ``region`` of its input changes, recomputed."""
    out_h, out_w = clean_out.shape[2:]
    o_r, nh = _changed_outputs(window, 0, region.r, region.patch.shape[2], out_h)
    o_c, nw = _changed_outputs(window, 1, region.c, region.patch.shape[3], out_w)
    if nh * nw > full_above * out_h * out_w:
        return Region(layer.forward(_whole(region, clean_in))[0])
    (kh, kw), (sh, sw), (pad_h, pad_w) = window
    if pad_h == pad_w:  # (crop takes one padding; no layer pads unevenly today)
        # the input rows those outputs read, from o*s in padded coordinates
        reads = crop(clean_in, pad_h, o_r * sh, o_c * sw, (nh - 1) * sh + kh, (nw - 1) * sw + kw)
        paste(reads, region.patch, region.r + pad_h - o_r * sh, region.c + pad_w - o_c * sw)
        try:
            return Region(layer.forward_padded(reads), o_r, o_c)  # the layer's own forward (and lowering)
        except MinicnnError:
            pass  # its padding is not zeros (max pooling pads with -inf): whole maps below
    # this node on whole maps, its changed rectangle cut back out, so that later nodes stay incremental
    full = layer.forward(_whole(region, clean_in))[0]
    return Region(cut(full, o_r, o_c, nh, nw), o_r, o_c)


def _union(layer, regions: list, cleans: list, full_above: float) -> Region:
    """A layer with several inputs (Add) on the union of its inputs' regions."""
    if any(region.r is None for region in regions):
        return Region(layer.forward(tuple(_whole(g, k) for g, k in zip(regions, cleans)))[0])
    size_h, size_w = cleans[0].shape[2:]
    top = np.min([g.r for g in regions], axis=0)
    left = np.min([g.c for g in regions], axis=0)
    bottom = np.max([g.r + g.patch.shape[2] for g in regions], axis=0)
    right = np.max([g.c + g.patch.shape[3] for g in regions], axis=0)
    h, w = int((bottom - top).max()), int((right - left).max())
    if h * w > full_above * size_h * size_w:
        return Region(layer.forward(tuple(_whole(g, k) for g, k in zip(regions, cleans)))[0])
    # one size for every b, moved inward where it would cross the border (it still holds every region)
    r, c = np.clip(top, 0, size_h - h), np.clip(left, 0, size_w - w)
    parts = tuple(paste(crop(k, 0, r, c, h, w), g.patch, g.r - r, g.c - c) for g, k in zip(regions, cleans))
    return Region(layer.forward(parts)[0], r, c)


def incremental_scores(net, image, positions, size: int, fill, full_above: float = 0.6, clean=None,
                       keep: dict | None = None):  # fmt: skip
    """Scores of ``image`` (C, H, W) under square occluders, recomputing only what each one changes.

    net: a Sequential or a Graph. positions: [(y, x)] top-left corners (a square may be cut by the
    border); fill: (C,) occluder value per channel in network-input space. Returns
    (len(positions), K) scores, equal to the full forward pass of the occluded images up to float
    rounding. clean: ``clean_outputs(net, image)``, computed here when not given (pass it when
    scoring one image in several batches); ``full_above`` is the fraction of a map's area above
    which the changed region is recomputed as a whole map. keep: a dict that receives every
    node's Region (name -> Region), to see what was recomputed where.
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
    clean = {INPUT: image[None], **clean}
    inputs = node_inputs(net)
    readers = {}  # how many nodes still have to read each output: a region is dropped after its last
    for names in inputs.values():
        for name in names:
            readers[name] = readers.get(name, 0) + 1
    regions = {INPUT: Region(patch, r0, c0)}
    for layer in net.layers:
        reads = inputs[layer.name]
        given = [regions[name] for name in reads]
        if layer.several_inputs:
            out = _union(layer, given, [clean[name] for name in reads], full_above)
        else:
            window, (region,) = layer.window(), given
            if region.r is None or window is None:  # a whole input, or a layer that mixes all positions
                out = Region(layer.forward(_whole(region, clean[reads[0]]))[0])
            elif window == POINTWISE:
                out = Region(layer.forward_padded(region.patch), region.r, region.c)
            else:
                out = _windowed(layer, window, region, clean[reads[0]], clean[layer.name], full_above)
        regions[layer.name] = out
        if keep is not None:
            keep[layer.name] = out
        for name in reads:
            readers[name] -= 1
            if not readers[name]:
                del regions[name]
    # the last node's whole outputs; a network that is spatial to its end gives its last patch
    return regions[net.layers[-1].name].patch
