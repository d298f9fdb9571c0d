"""Image-specific class saliency (Simonyan, Vedaldi & Zisserman 2013, sec. 3), with SmoothGrad.

The class score S_c is approximated near the image I by its first-order Taylor expansion,
S_c(I) ~ w^T I + b with w = dS_c/dI; the magnitude of w says which pixels need changing least to
change the score most. For a colour image the map is M_ij = max_c |w_(c,i,j)| (sec. 3.1).

SmoothGrad (Smilkov et al. 2017, sec. 3) averages w over noisy copies I + N(0, sigma^2) with sigma a
fraction of the image's value range, which removes much of the visual noise of the raw gradient.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from minicnn.backend import get_xp, on_device_of
from minicnn.errors import MinicnnError
from minicnn.seeding import make_rng
from minicnn.tools.targets import as_batch, forward_record, one_hot, resolve_targets


def class_gradient(net, x, targets):
    """dS_t/dI for every image: x (N, C, H, W), targets (N,) ints -> (N, C, H, W), one backward.

    The pass keeps only what the input gradient reads (keep="input-gradient": ReLU sign bits, max-pool
    switches, shapes) and backward lets each layer's cache go once it has run (release=True): the
    gradient is the same to the bit, the peak memory lower."""
    rec = net.run(x, keep="input-gradient")
    return rec.backward(one_hot(targets, rec.output()), mode="gradient", release=True)


def smoothgrad_noise(x, samples: int, noise: float, seed: int):
    """The SmoothGrad perturbations: yields ``samples`` arrays shaped like x (N, C, H, W), in order.

    Sample s is rng.standard_normal(x.shape, float32) * sigma_n with rng = default_rng(seed) drawn
    in order and sigma_n = noise * (max - min of image n), as in Smilkov et al. (2017, sec. 4.1).
    Drawn on the CPU (so a seed means the same noise on every device), then moved to x's device.
    """
    flat = x.reshape(len(x), -1)
    sigma = noise * (flat.max(axis=1) - flat.min(axis=1))
    rng = make_rng(seed)
    for _ in range(samples):
        eps = on_device_of(rng.standard_normal(x.shape, dtype=np.float32), x)
        yield (eps * sigma[:, None, None, None]).astype(x.dtype)


def saliency(
    net,
    x,
    target="predicted",
    *,
    signed: bool = False,
    times_input: bool = False,
    samples: int = 0,
    noise: float = 0.15,
    seed: int = 0,
    batch_size: int = 16,
    record=None,
    progress: bool = True,
):
    """Saliency maps of the target class scores for a batch of images.

    Args:
        net: a Sequential ending in class scores (N, K).
        x: images (N, C, H, W) in network-input space (preprocessed), or one (C, H, W) image.
        target: class index, list of N indices, or "predicted" (argmax of the clean image's scores).
        signed: return the raw signed gradient (N, C, H, W) instead of max over channels of |.|.
        times_input: multiply the gradient by the input (gradient x input; Shrikumar et al. 2016).
        samples: SmoothGrad sample count (0: the plain gradient). The noisy copies are processed
            ``batch_size`` images at a time, several samples per forward/backward pass.
        noise: SmoothGrad noise level, a fraction of each image's value range (Smilkov et al. use
            0.1-0.2). seed: seeds the noise (see ``smoothgrad_noise``).
        record: the PassRecord of a forward pass over x already run by the caller (reused).
        progress: with SmoothGrad, a tqdm bar of the noisy samples on stderr.

    Returns:
        (N, H, W) array of net.dtype: max over colour channels of |g| (Simonyan et al. 2013, sec.
        3.1), or (N, C, H, W) g itself when ``signed``; g = dS/dI, averaged over the SmoothGrad
        samples when ``samples > 0`` (averaged before |.| and max, as in Smilkov et al. eq. 2),
        times the input when ``times_input`` (with SmoothGrad, each noisy gradient times its noisy
        input, then averaged: SmoothGrad applied to gradient x input, Smilkov et al. sec. 4).
    """
    x = as_batch(net, x)
    if samples < 0 or noise < 0 or batch_size < 1:
        raise MinicnnError("expected samples >= 0, noise >= 0 and batch_size >= 1")
    if samples == 0:
        rec = forward_record(net, x, record, keep="input-gradient")  # scores and the gradient only
        scores = rec.output()
        dy = one_hot(resolve_targets(target, scores), scores)
        grad = rec.backward(dy, mode="gradient", release=record is None)  # a caller's record stays whole
    else:
        # The clean image's scores give "predicted" its classes and check given indices against the
        # network's classes: one forward pass beside the samples' passes (none with the caller's record).
        targets = resolve_targets(target, forward_record(net, x, record, keep="input-gradient").output())
        grad = _smoothgrad(net, x, targets, samples, noise, seed, batch_size, times_input, progress)
    if times_input and samples == 0:
        grad = grad * x
    if signed:
        return grad
    return get_xp(grad).abs(grad).max(axis=1)


def _smoothgrad(net, x, targets, samples, noise, seed, batch_size, times_input=False, progress=False):
    """Mean over ``samples`` noisy copies x' of dS/dI(x') (times x' if times_input): (N, C, H, W).

    The copies go through ``batch_size // N`` samples per forward/backward pass (at least one)."""
    xp = get_xp(x)
    n = len(x)
    per_pass = max(1, batch_size // n)  # samples per pass; a pass holds per_pass * n images
    total = xp.zeros_like(x)
    pending = []

    def flush():
        batch = xp.concatenate([x + eps for eps in pending])
        grad = class_gradient(net, batch, np.tile(targets, len(pending)))
        if times_input:
            grad = grad * batch
        pending.clear()
        return grad.reshape(-1, *x.shape).sum(axis=0)

    noisy = smoothgrad_noise(x, samples, noise, seed)
    for eps in tqdm(
        noisy, total=samples, desc="SmoothGrad", unit="sample", leave=False, disable=not progress
    ):
        pending.append(eps)
        if len(pending) == per_pass:
            total += flush()
    if pending:
        total += flush()
    return total / samples
