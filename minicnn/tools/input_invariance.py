"""Input invariance (Kindermans et al. 2017, "The (Un)reliability of Saliency Methods", sec. 2-3).

Two networks that compute the same function of the image should get the same explanation. The
test builds a second network that takes the image shifted by a constant, x2 = x + m (m: one value
per channel; the paper moves MNIST from [0, 1] to [-1, 0], m = -1), and compensates the shift in
the first layer's bias, b2 = b - sum_{c, i, j} W[:, c, i, j] m[c], so that both networks give
identical scores for every image. A method is input invariant when its maps of the two networks
are equal: the gradient is (the networks differ only by a constant before the first layer), so
are its relatives that never read the input's value (SmoothGrad, guided backpropagation, the
DeconvNet, Grad-CAM); gradient x input, integrated gradients and DeepLIFT against the zero
baseline, and LRP are not (the paper's fig. 2 and table 1), while integrated gradients becomes
invariant when its baseline is shifted with the input (sec. 3.2).

Zero padding. With a padded first convolution the compensation is not exact at the border: the
padded entries stay 0 in the second network instead of moving to m, so a bias that compensates
the interior over-compensates every window that reaches outside the image. minicnn makes it exact
by moving the padding into the input: both networks run their first convolution unpadded on the
image padded explicitly with zeros *before* the shift (``pad_input``), so the shift reaches the
padding as well. The first network on the padded image is the original network (the same numbers
everywhere); maps are computed on the padded image and cropped back to H x W, where they are the
original network's maps (both checked by tests/tools/test_input_invariance.py).

Ties. The two networks agree to the last few bits (float64), not bit for bit. Where a max-pooling
window holds exactly equal values (a constant region such as the digits' black background), the
last bit decides the switch, and every method that routes a signal through the switches would move
it by a pixel there: a floating-point tie, not a dependence on the input's value. Both networks
therefore lower every convolution by im2col (``EXACT_LOWERING``), where each output is the same
dot product, so a constant region stays exactly constant; Winograd F(4x4, 3x3) rounds the
positions of a tile differently and breaks such ties at random (which lowering ``auto`` picks
depends on the layer and the batch). ``moved_switches`` counts the switches that
differ all the same (0 on the shipped digits).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.layers.conv import Conv2D
from minicnn.network import Sequential
from minicnn.tools.targets import as_batch, resolve_targets

# im2col computes every output as the same dot product, so a constant region gives exactly equal
# outputs in both networks (Winograd's tiles round each position of a tile differently, which breaks
# the max-pool ties of a shifted constant region at random: see "Ties")
EXACT_LOWERING = "im2col"
TOLERANCE = 1e-9  # relative difference below which two float64 maps count as equal
BASELINE_OPTION = "baseline"  # the option of a method that names a point in input space


@dataclass
class InvarianceRow:
    """One method: ``difference`` = max |map1 - map2| / max |map1| over the batch (float64), the
    verdict ``invariant`` (difference <= TOLERANCE), and how its baseline was treated."""

    method: str
    baseline: str
    difference: float
    invariant: bool


@dataclass
class InvarianceResult:
    """shift (C,) float64; output_difference: max |f1(x) - f2(x + m)| over the scores (float64);
    rows: one InvarianceRow per method and baseline treatment; targets (N,) int64; moved_switches:
    max-pooling switches of the second network that differ from the first's (see "Ties")."""

    shift: np.ndarray
    output_difference: float
    targets: np.ndarray
    rows: list = field(default_factory=list)
    moved_switches: dict = field(default_factory=dict)  # pooling layer name -> switches that differ

    def verdicts(self) -> dict:
        """{row label: invariant}; a row's label is its method, plus " (baseline shifted)" where the
        baseline moved with the input."""
        return {_label(r): r.invariant for r in self.rows}


def _label(row: InvarianceRow) -> str:
    return row.method + (" (baseline shifted)" if row.baseline == "shifted" else "")


def _first_convolution(net):
    net.require_chain("the input-invariance test")
    first = net.layers[0]
    if not first.is_convolution:
        raise MinicnnError(f"the input-invariance test compensates the shift in the first layer's bias; "
                           f"expected a convolution first, got {first.name!r}")  # fmt: skip
    return first


def _unpadded(first, weight, bias) -> Conv2D:
    """The first convolution without padding (its input arrives padded), with ``bias``."""
    conv = Conv2D(first.in_channels, first.out_channels, first.kernel_size, stride=first.stride, padding=0,
                  name=first.name, algorithm=EXACT_LOWERING)  # fmt: skip
    conv.weight, conv.bias = weight.copy(), bias
    return conv


def check_shift(net, shift) -> np.ndarray:
    """The shift as (C,) float64: a number (every channel) or one value per input channel."""
    channels = _first_convolution(net).in_channels
    m = np.broadcast_to(np.asarray(shift, dtype=np.float64), (channels,)) if np.ndim(shift) == 0 else shift
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (channels,) or not np.isfinite(m).all():
        raise MinicnnError(
            f"shift must be a finite number or {channels} numbers (one per channel), got {shift!r}"
        )
    return m


def shifted_networks(net, shift):
    """(explicit, shifted, pad): two float64 copies of ``net`` whose first convolution is unpadded
    and reads an image padded by ``pad`` pixels; ``shifted`` has the bias b - sum W m.
    explicit(pad_input(x, pad)) equals net(x), and shifted(pad_input(x, pad) + m) equals both."""
    first = _first_convolution(net)
    m = check_shift(net, shift)
    pad = int(first.padding)
    weight = to_numpy(first.weight).astype(np.float64)
    bias = to_numpy(first.bias).astype(np.float64)
    # every output of the unpadded convolution reads a full window of the padded input, so the
    # shift adds sum_{c,i,j} W[o, c, i, j] m[c] to each output of channel o: the bias takes it back
    compensation = np.einsum("ocij,c->o", weight, m)
    rest = copy.deepcopy(net.layers[1:])
    for layer in rest:
        for key, value in layer.params.items():
            setattr(layer, key, to_numpy(value).astype(np.float64))
        if layer.is_convolution:
            layer.algorithm = EXACT_LOWERING
    meta = dict(net.meta)
    if "input_shape" in meta and meta["input_shape"]:
        c, h, w = meta["input_shape"]
        meta["input_shape"] = [c, h + 2 * pad, w + 2 * pad]
    explicit = Sequential([_unpadded(first, weight, bias.copy()), *rest], meta=dict(meta), dtype=np.float64)
    shifted_rest = copy.deepcopy(rest)
    shifted = Sequential([_unpadded(first, weight, bias - compensation), *shifted_rest], meta=dict(meta),
                         dtype=np.float64)  # fmt: skip
    return explicit, shifted, pad


def naive_shifted_network(net, shift):
    """The same compensation with the padding left in the convolution (float64): exact in the
    interior, wrong wherever a window reaches the zero padding. For showing why ``pad_input``."""
    first = _first_convolution(net)
    m = check_shift(net, shift)
    work = copy.deepcopy(net).astype(np.float64)
    work.layers[0].bias = to_numpy(first.bias).astype(np.float64) - np.einsum(
        "ocij,c->o", to_numpy(first.weight).astype(np.float64), m
    )
    return work


def pad_input(x, pad: int) -> np.ndarray:
    """x (N, C, H, W) -> (N, C, H + 2 pad, W + 2 pad) float64, zero padded (the first convolution's
    padding, made part of the input)."""
    x = np.asarray(to_numpy(x), dtype=np.float64)
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def _crop(maps, pad: int, height: int, width: int) -> np.ndarray:
    a = to_numpy(maps).astype(np.float64)
    if a.ndim == 3:
        a = a[:, None]
    # maps at the input's resolution are cropped back to the image; coarser maps (none today) kept
    if a.shape[-2:] == (height + 2 * pad, width + 2 * pad):
        a = a[..., pad : pad + height, pad : pad + width]
    return a


def input_invariance(net, x, methods=None, shift=-1.0, target="predicted") -> InvarianceResult:
    """Each method's input-invariance verdict (Kindermans et al. 2017) on images x (N, C, H, W).

    methods: registry names (``tools/methods.py``; default: every method with a class target that
    ``net`` allows, LRP and the rest included as they exist); a method with a ``baseline`` option is
    run twice, with the baseline as given (0) for both networks and with the second network's
    baseline shifted by m. shift: a number or one per channel. Everything runs in float64.
    """
    from minicnn.tools.methods import METHODS, available, get

    _first_convolution(net)
    m = check_shift(net, shift)
    explicit, shifted, pad = shifted_networks(net, m)
    x1 = pad_input(as_batch(net, x), pad)
    x2 = x1 + m[None, :, None, None]
    r1, r2 = explicit.run(x1), shifted.run(x2)
    s1, s2 = to_numpy(r1.output()), to_numpy(r2.output())
    targets = resolve_targets(target, s1)
    result = InvarianceResult(m, float(np.abs(s1 - s2).max()), targets)
    for layer in explicit.layers:
        if layer.is_pooling and hasattr(r1.cache(layer.name), "switches"):
            moved = to_numpy(r1.cache(layer.name).switches) != to_numpy(r2.cache(layer.name).switches)
            result.moved_switches[layer.name] = int(moved.sum())
    if methods is None:
        methods = [n for n in available(net) if METHODS[n].target and n != "saliency"]
    h, w = x1.shape[2] - 2 * pad, x1.shape[3] - 2 * pad
    for name in methods:
        method = get(name)
        treatments = ["as given", "shifted"] if BASELINE_OPTION in method.options else ["none"]
        for treatment in treatments:
            options = {}
            if treatment == "shifted":  # the second network's baseline is the first's, shifted
                base = np.broadcast_to(
                    np.asarray(method.options[BASELINE_OPTION], dtype=np.float64), x1.shape
                )
                options = {BASELINE_OPTION: base + m[None, :, None, None]}
            try:
                a1 = _crop(method(explicit, x1, targets), pad, h, w)
                a2 = _crop(method(shifted, x2, targets, **options), pad, h, w)
            except ImportError:
                continue  # a registry entry whose tool this copy of minicnn lacks
            scale = max(float(np.abs(a1).max()), 1e-300)
            diff = float(np.abs(a1 - a2).max()) / scale
            result.rows.append(InvarianceRow(method.name, treatment, diff, diff <= TOLERANCE))
    return result
