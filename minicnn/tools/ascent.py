"""The optimisation loop shared by class models, activation maximisation and inversion.

All three find an input image by following the gradient of an objective with the weights fixed
(Erhan et al. 2009; Simonyan et al. 2013, sec. 2; Mahendran & Vedaldi 2015). They differ only in
the objective (one batched forward/backward through the network per step), the start image and the
regularisers (penalties, tools/penalties.py, and input modifiers, tools/modifiers.py); this file holds
what is common: the loop, the check and split of the regularisers, four optimisers, the "zero"
image of the network's input space, the display mapping, and the result object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import trange

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.io.preprocess import CONVENTIONS, deprocess, preprocess
from minicnn.seeding import make_rng
from minicnn.tools.modifiers import InputModifier
from minicnn.tools.penalties import Penalty


def check_regularizers(regularizers) -> tuple:
    """A tuple of Penalty and InputModifier objects, in the given order (None -> ()); MinicnnError
    naming the first thing that is neither. The tools (class_model, maximize, invert) take one
    ``regularizers=`` sequence mixing the two families, as tf-keras-vis's ``regularizers`` and
    ``input_modifiers`` together."""
    if regularizers is None:
        return ()
    if isinstance(regularizers, (Penalty, InputModifier)):
        return (regularizers,)
    out = tuple(regularizers)
    for r in out:
        if not isinstance(r, (Penalty, InputModifier)):
            raise MinicnnError(
                "regularizers are penalties (L2Penalty, AlphaNorm, TotalVariation) or input modifiers "
                f"(Jitter, GaussianBlur, Clip, NormClip, L2Decay), got {type(r).__name__}"
            )
    return out


def split_regularizers(regularizers) -> tuple[tuple, tuple]:
    """(penalties, input modifiers), each in the given order: the ascent loop adds the first to the
    objective and applies the second to the image."""
    regs = check_regularizers(regularizers)
    penalties = tuple(r for r in regs if isinstance(r, Penalty))
    return penalties, tuple(r for r in regs if isinstance(r, InputModifier))


OPTIMIZERS = ("sgd", "momentum", "adam", "normalized")

# The conventions of io.preprocess.CONVENTIONS that subtract a mean: there the zero input is the mean
# image, and the mean is per RGB channel (so a 1-channel input cannot be deprocessed with them).
# Asked of preprocess itself (a black pixel does not map to zero) rather than listed a second time.
MEAN_SUBTRACTED = frozenset(c for c in CONVENTIONS if preprocess(np.zeros((1, 1, 1, 3)), c).any())


@dataclass
class AscentResult:
    """What an optimisation tool returns; batched calls hold a batch of each.

    image:   (N, C, H, W) net.dtype, the optimised input in the network's input space (ready for
             ``net.forward``), on the network's device.
    display: (N, H, W, C) float32 in [0, 1] on the host: the image deprocessed with the network's
             ``meta["preprocess"]`` (mean added back, BGR -> RGB for "caffe"), its deviation from
             the reference image scaled by one factor for all channels (see to_display).
    history: (N, steps) float64, the objective (regularisers included) at the start of each step.
    info:    extra per-run records (e.g. the raw score per step, the relative feature error).
    """

    image: object
    display: np.ndarray
    history: np.ndarray
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.history)


def input_shape_of(net, input_shape=None) -> tuple:
    """(C, H, W) to optimise: ``input_shape`` or the network's ``meta['input_shape']``."""
    shape = input_shape if input_shape is not None else net.input_shape
    if shape is None:
        raise MinicnnError("input shape unknown: pass input_shape=(C, H, W) or set meta['input_shape']")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise MinicnnError(f"expected input_shape (C, H, W) of positive sizes, got {shape}")
    net.shapes(shape)  # one clear error when the image is too small for the network
    return shape


def reference_image(net, shape):
    """The image (C, H, W) that plays the role of "zero" in the network's input space.

    Simonyan et al. (2013, sec. 2) start from the zero image of mean-subtracted input, i.e. the
    training mean, and penalise the distance to it. For inputs whose convention subtracts the mean
    (MEAN_SUBTRACTED: "caffe", "torch") this is zeros. For the other conventions ("unit", "none":
    pixels / 255 or raw) it is ``meta["mean_image"]`` when the file stores the mean training image,
    and zeros (black) otherwise; the shipped digit models store the mean of the 500 held-out digits
    (they are dead at the black image: every first-layer ReLU off). Without ``meta["preprocess"]``
    it is zeros.
    """
    xp = net.xp
    mean = net.meta.get("mean_image")
    convention = net.meta.get("preprocess")
    if convention in CONVENTIONS and convention not in MEAN_SUBTRACTED and mean is not None:
        mean = np.asarray(mean, dtype=net.dtype)
        if mean.shape != tuple(shape):
            raise MinicnnError(f"meta['mean_image'] has shape {mean.shape}, expected {tuple(shape)}")
        return xp.asarray(mean)
    return xp.zeros(shape, dtype=net.dtype)


def to_display(net, x, ref=None) -> np.ndarray:
    """x (N, C, H, W) in the network's input space -> (N, H, W, C) float32 in [0, 1] for viewing.

    Optimised images leave the pixel range, so they must be scaled; the rule keeps colours true.
    Both x and ``ref`` (C, H, W), the image the optimisation treats as zero (default:
    reference_image, e.g. the mean image), are deprocessed to pixels with ``meta["preprocess"]``
    (mean added back, BGR -> RGB for "caffe"). Each image is then shown as

        ref + s (x - ref),   s = 127.5 / (99.5th percentile of |x - ref| over its pixels and channels)

    one scale s for all three channels and the reference fixed: the reference appears in its true
    colours, and a deviation keeps its hue (its channels keep their ratios); the strong deviations
    reach half the range, the strongest are clipped. (Min-max stretching over all channels together
    would turn the near-grey mean pixel of ImageNet, (124, 117, 104), into orange.)
    Simonyan et al. (2013, fig. 1) and Yosinski et al. (2015) show their images with the mean added
    back. Without a known convention ("none", or a per-RGB-channel mean on an input that does not
    have 3 channels) the reference has no colour of its own and is drawn mid-grey.
    """
    convention = net.meta.get("preprocess") or "none"
    x = to_numpy(x)
    if ref is None:
        ref = reference_image(net, x.shape[1:])
    ref = to_numpy(ref)
    if convention in MEAN_SUBTRACTED and x.shape[1] != 3:
        convention = "none"
    img = deprocess(x, convention, clip=False).astype(np.float64)
    base = deprocess(ref, convention, clip=False).astype(np.float64)[None]
    if convention == "none":
        base = np.full_like(base, 127.5)  # no pixel scale known: the reference is drawn mid-grey
        dev = img - deprocess(ref, "none", clip=False).astype(np.float64)[None]
    else:
        dev = img - base
    spread = np.percentile(np.abs(dev).reshape(len(dev), -1), 99.5, axis=1)
    scale = np.where(spread > 0, 127.5 / np.where(spread > 0, spread, 1.0), 1.0)[:, None, None, None]
    return np.clip((base + scale * dev) / 255.0, 0.0, 1.0).astype(np.float32)


def check_schedule(steps, lr) -> tuple[int, float]:
    """steps >= 1 (int) and a learning rate > 0, or a one-line MinicnnError."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise MinicnnError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(lr, (int, float, np.number)) or not np.isfinite(lr) or lr <= 0:
        raise MinicnnError(f"lr (learning rate) must be a finite number > 0, got {lr!r}")
    return int(steps), float(lr)


class _Optimizer:
    """Turns the gradient into a step: "sgd" (plain: lr * g), "momentum" (0.9), "adam" (Kingma & Ba
    2015, beta1 0.9, beta2 0.999, eps 1e-8) or "normalized" (lr * g / rms(g) per image: every step
    changes each image by lr per pixel on average, whatever the scale of the unit's gradient)."""

    def __init__(self, method: str, lr: float, like):
        if method not in OPTIMIZERS:
            raise MinicnnError(f"unknown optimizer {method!r}: expected one of {', '.join(OPTIMIZERS)}")
        self.method, self.lr, self.t = method, lr, 0
        self.m = None if method == "sgd" else like * 0
        self.v = like * 0 if method == "adam" else None

    def step(self, g):
        if self.method == "sgd":
            return self.lr * g
        if self.method == "normalized":
            rms = (g * g).reshape(len(g), -1).mean(axis=1) ** 0.5
            return self.lr * g / (rms.reshape(-1, 1, 1, 1) + 1e-12)
        if self.method == "momentum":
            self.m = 0.9 * self.m + g
            return self.lr * self.m
        self.t += 1
        self.m = 0.9 * self.m + 0.1 * g
        self.v = 0.999 * self.v + 0.001 * g * g
        mhat = self.m / (1 - 0.9**self.t)
        vhat = self.v / (1 - 0.999**self.t)
        return self.lr * mhat / (vhat**0.5 + 1e-8)


def run_ascent(
    net,
    x0,
    objective,
    *,
    steps: int,
    lr: float,
    regularizers=(),
    seed=None,
    optimizer: str = "sgd",
    maximize: bool = True,
    project=None,
    ref=None,
    desc: str = "ascent",
    progress: bool = True,
) -> AscentResult:
    """Optimise the batch x0 (N, C, H, W) for ``steps`` steps and return an AscentResult.

    objective(x) -> (value (N,), gradient like x): one batched forward/backward per call.
    ``regularizers`` mixes penalties and input modifiers (penalties.py, modifiers.py). Each penalty's
    weighted term is subtracted from the value when maximising (added to the loss when
    minimising); the modifiers' ``transform`` hooks change the image the objective sees and their
    ``after`` hooks act after each update. ``project`` (x -> x) runs after each update, before the
    ``after`` hooks (e.g. the norm constraint of activation maximisation). ``ref`` (C, H, W) is the
    image that counts as zero (default: reference_image). Records in ``info``: "objective" (the
    network term alone, (N, steps)) and "start" (x0). ``progress``: a tqdm bar of the steps on
    stderr, shown from the start (the first step can be the slowest: Numba compiles there).
    """
    steps, lr = check_schedule(steps, lr)
    penalties, modifiers = split_regularizers(regularizers)
    ref = reference_image(net, x0.shape[1:]) if ref is None else ref
    rng = make_rng(seed)
    sign = 1.0 if maximize else -1.0
    x = x0.astype(net.dtype, copy=True)
    opt = _Optimizer(optimizer, lr, x)
    n = len(x)
    history = np.empty((n, steps), dtype=np.float64)
    raw = np.empty((n, steps), dtype=np.float64)
    for step in trange(steps, desc=desc, unit="step", leave=False, disable=not progress):
        seen, undo = x, []
        for m in modifiers:
            seen, back = m.transform(seen, rng)
            if back is not None:
                undo.append(back)
        value, grad = objective(seen)
        for back in reversed(undo):
            grad = back(grad)
        raw[:, step] = to_numpy(value)
        total = to_numpy(value).astype(np.float64)
        for p in penalties:
            if p.weight:
                term, term_grad = p.penalty(x, ref)
                total = total - sign * p.weight * to_numpy(term)
                grad = grad - sign * p.weight * term_grad
        history[:, step] = total
        if not np.isfinite(total).all():
            raise MinicnnError(f"{desc}: the objective diverged at step {step}; lower lr")
        x = (x + sign * opt.step(grad)).astype(net.dtype, copy=False)
        if project is not None:
            x = project(x)
        for m in modifiers:
            x = m.after(x, step, ref)
    x = x.astype(net.dtype, copy=False)
    return AscentResult(x, to_display(net, x, ref), history, {"objective": raw, "start": x0})
