"""Project one activation or one feature map of a layer back to image space (Zeiler & Fergus 2013).

"To examine a given convnet activation, we set all other activations in the layer to zero and pass
the feature maps as input to the attached deconvnet layer" (Zeiler & Fergus 2013, sec. 2.1): the
signal that starts the backward pass is the layer's own activation at the chosen place(s), zero
elsewhere. The pass then runs with one of the three ReLU rules, which Simonyan et al. (2013, sec. 4)
and Springenberg et al. (2014) show to be the only difference between the DeconvNet, the gradient
and guided backpropagation: with ``mode="gradient"`` the result is a_u * da_u/dI.
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp, to_numpy
from minicnn.errors import MinicnnError
from minicnn.rules import check_mode
from minicnn.tools.targets import as_batch, forward_record


def strongest_units(a) -> np.ndarray:
    """Each image's largest activation: a (N, C, h, w) -> (N, 3), (N, F) -> (N, 1) int64 indices."""
    xp = get_xp(a)
    flat = to_numpy(xp.argmax(a.reshape(len(a), -1), axis=1))
    return np.stack(np.unravel_index(flat, a.shape[1:]), axis=1).astype(np.int64)


def unit_signal(a, unit=None):
    """The starting signal at a layer: a (N, ...) activations -> dy shaped like a.

    unit: None (each image's strongest activation), an int (a feature map of a conv layer, kept
    whole; a unit of a dense layer), or a tuple (channel, y, x) for one activation of a conv layer.
    dy holds the activation values at the selected places and zero elsewhere.
    """
    xp = get_xp(a)
    shape = tuple(a.shape[1:])
    dy = xp.zeros_like(a)
    if unit is None:
        idx = strongest_units(a)
        rows = tuple(xp.asarray(r) for r in (np.arange(len(a)), *idx.T))  # device index arrays
        dy[rows] = a[rows]
        return dy
    unit_t = (unit,) if np.isscalar(unit) else tuple(unit)
    if not all(isinstance(u, (int, np.integer)) for u in unit_t) or len(unit_t) not in (
        1,
        len(shape),
    ):
        raise MinicnnError(
            f"unit must be None, a channel index or a {len(shape)}-tuple index for a layer "
            f"output of shape {shape}, got {unit!r}"
        )
    if any(not 0 <= u < s for u, s in zip(unit_t, shape[: len(unit_t)], strict=True)):
        raise MinicnnError(f"unit {unit!r} is outside the layer's output shape {shape}")
    sel = (slice(None),) + tuple(int(u) for u in unit_t)
    dy[sel] = a[sel]
    return dy


def reconstruct(net, x, layer: str, unit=None, mode="deconvnet", record=None):
    """Image-space projection of activations of ``layer``, the others set to zero.

    Args:
        net: a Sequential. x: images (N, C, H, W) in network-input space, or one (C, H, W) image.
        layer: the layer name (any layer; ``net.names`` lists them).
        unit: None: each image's strongest activation in the layer; c: the whole feature map c
            (conv-shaped output) or unit c (vector output); (c, y, x): one activation.
        mode: "deconvnet" (Zeiler & Fergus 2013), "gradient" (Simonyan et al. 2013) or "guided"
            (Springenberg et al. 2014); or a list/tuple of them, to get every rule from one forward
            pass.
        record: the PassRecord of a full forward pass over x already run by the caller (reused;
            by default the pass runs only up to ``layer``).

    Returns:
        (N, C, H, W) array of net.dtype: the backward signal at the input; for a list of modes, a
        dict mode -> that array. All modes use the same forward pass and the same starting
        signal, so they can be shown side by side.
    """
    modes = [mode] if isinstance(mode, str) else list(mode)
    for m in modes:
        check_mode(m)
    x = as_batch(net, x)
    net.index(layer)  # unknown names raise a MinicnnError that lists the valid ones
    rec = net.run(x, stop=layer) if record is None else forward_record(net, x, record)
    dy = unit_signal(rec.output(layer), unit)
    signals = {m: rec.backward(dy, mode=m, start=layer) for m in modes}
    return signals[mode] if isinstance(mode, str) else signals
