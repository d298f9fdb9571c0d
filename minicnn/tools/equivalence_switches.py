"""Max-pooling switches checked against an independent argmax of the recorded input.

In the DeconvNet table both sides of a max-pool row route the signal through the same recorded
switches (the max-pool kernel writes them; ``unpool`` and the kernel's scatter read them), so a
wrong switch would move no row there. This section checks the switches themselves: for every window
of every max-pool layer, the recorded input X (the output of the layer the pool reads, from the
record, padded with -inf as the layer pads) is cut into windows by NumPy strides, and the window's
maximum, found by ``max`` here, is compared with X at the recorded switch:

    row gap        max over windows |max(window) - X[switch]| / max |X|      (0 when every switch
                                                                              points at a maximum)
    expected       0 switches off a maximum;  measured: the count that are
    numbers        switches that differ from the window's first maximum (only ties may: a switch at
                   another equal maximum is correct)

The equality is exact (a comparison of stored values), so it holds on every network.
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import to_numpy
from minicnn.tools.deconvnet import forward_input
from minicnn.tools.equivalence_section import Row, Section


def windows(x, window):
    """x (N, C, H, W) padded with -inf by ``window.padding`` -> (N, C, Ho, Wo, kh * kw): each output's
    window, flattened in (ky, kx) order (the switches' order), as a strided view."""
    (kh, kw), (sh, sw), (ph, pw) = window.kernel, window.stride, window.padding
    n, c, h, w = x.shape
    padded = np.full((n, c, h + 2 * ph, w + 2 * pw), -np.inf, dtype=x.dtype)
    padded[:, :, ph : ph + h, pw : pw + w] = x
    view = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return view.reshape(*view.shape[:4], kh * kw)


def switch_row(layer, record) -> Row:
    """One max-pool layer's switches against the independent maximum of its windows."""
    x = to_numpy(forward_input(layer, record))
    switches = to_numpy(record.cache(layer.name).switches).astype(np.int64)
    cut = windows(x, layer.window())
    cut = cut[:, :, : switches.shape[2], : switches.shape[3]]
    at_switch = np.take_along_axis(cut, switches[..., None], axis=-1)[..., 0]
    biggest = cut.max(axis=-1)
    scale = float(np.abs(x).max()) or 1.0
    off = int((at_switch != biggest).sum())
    other_tie = int((switches != cut.argmax(axis=-1)).sum()) - off
    gap = float(np.abs(biggest - at_switch).max()) / scale
    return Row(
        layer.name,
        "X at the recorded switch",
        "max of the window (NumPy)",
        gap,
        0.0,
        expected=0,
        measured=off,
        numbers={"switches": int(switches.size), "at another tied maximum": other_tie},
    )


def switches_section(setting) -> Section:
    """A row per layer whose cache records switches (max-pooling)."""
    net, rec = setting.net, setting.record
    rows = [
        switch_row(layer, rec)
        for layer in net.layers
        if layer.is_pooling and getattr(rec.cache(layer.name), "switches", None) is not None
    ]
    return Section(
        "switches",
        "max-pool switches against an independent argmax",
        "each recorded switch points at its window's maximum of the recorded input (Zeiler & Fergus "
        "2013, sec. 2.1: the switches of unpooling)",
        [],
        rows,
        ["sides: the input value at each switch (max-pool kernel) vs the window maximum by NumPy strides"],
    )
