"""Feature inversion (Mahendran & Vedaldi 2015, "Understanding deep image representations by
inverting them", sec. 2-3).

Given the representation phi0 = phi(x0) of an image at one layer, find an image x with the same
representation and natural-image statistics:

    x* = argmin_x ||phi(x) - phi0||^2 / ||phi0||^2 + lambda_a R_alpha(x) + lambda_tv R_TV(x)

R_alpha is the alpha-norm (alpha = 6) and R_TV the V^beta total variation (beta = 2), both normalised
by the typical pixel range B as in sec. 3.3 (see penalties.AlphaNorm and TotalVariation), so the
weights are comparable across networks. The data term is normalised by ||phi0||^2, so the loss starts
near 1 whatever the layer.

Optimiser: Adam on the input (Kingma & Ba 2015). The paper uses gradient descent with momentum and a
hand-tuned step per layer; Adam's per-pixel step normalisation removes that tuning (the gradient of
the data term differs by orders of magnitude between a first conv layer and a dense layer), which is
what makes one default work for every layer.
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.io.preprocess import CONVENTIONS
from minicnn.seeding import make_rng
from minicnn.tools.ascent import AscentResult, check_regularizers, reference_image, run_ascent
from minicnn.tools.penalties import AlphaNorm, TotalVariation
from minicnn.tools.targets import as_batch, forward_record

# B, the typical range of a pixel around the mean, in each of io.preprocess.CONVENTIONS' input units:
# Mahendran & Vedaldi use B = 80 for 0..255 images, which "caffe" and "none" keep. The conventions
# that rescale differ: "torch" divides by 255 and by a std of about 0.226 (the mean of TORCH_STD);
# "unit" inputs (x / 255, not mean-subtracted, digits on black) span 0..1, so B = 1 there.
PIXEL_RANGE = {c: 80.0 for c in CONVENTIONS} | {"torch": 80.0 / (255.0 * 0.226), "unit": 1.0}


def invert(
    net,
    x,
    layer: str,
    steps: int = 200,
    lr: float = 0.05,
    alpha: float = 6.0,
    alpha_weight: float = 1e-3,
    beta: float = 2.0,
    tv_weight: float = 1e-3,
    scale: float | None = None,
    regularizers=(),
    seed=None,
    optimizer: str = "adam",
    record=None,
    progress: bool = True,
) -> AscentResult:
    """Images whose representation at ``layer`` matches that of x (Mahendran & Vedaldi 2015).

    Args:
        net: a Sequential network; x: (N, C, H, W) or (C, H, W) images in its input space.
        layer: the layer whose output phi is inverted.
        steps, lr, optimizer: Adam (default; see the module docstring), "momentum" or "sgd".
        alpha, alpha_weight: exponent and weight of the alpha-norm penalty (paper: alpha = 6).
        beta, tv_weight: exponent and weight of the total-variation penalty (paper: beta = 2).
        scale: B, the typical pixel range (default by ``meta["preprocess"]``: 80 for "caffe",
            1 for "unit", see PIXEL_RANGE); V = B / 6.5 as in the paper.
        regularizers: extra penalties (tools/penalties.py) and input modifiers (tools/modifiers.py),
            e.g. Jitter.
        seed: the start is the mean image plus Gaussian noise of std B / 10, drawn from seed
            (smaller noise on a black digit canvas can leave every deep ReLU off: zero gradient);
            the random input modifiers (Jitter) then draw from the same stream.
        record: optional PassRecord of a full forward pass over this same x (``record.input is
            x``), from which phi0 is read instead of running the network again.

    Returns an AscentResult: image (N, C, H, W), display, history (N, steps) the loss per step,
    info["error"] (N, steps) the relative feature error ||phi(x) - phi0|| / ||phi0|| at each step,
    info["final_error"] (N,) that of the returned image, info["objective"] the data term per step.
    """
    x = as_batch(net, x)
    net.shapes(x.shape[1:])  # one clear error when the image is too small for the network
    xp = net.xp
    n = len(x)
    # the target representation; a caller's full record (the CLI's) already holds it
    phi0 = (net.run(x, stop=layer) if record is None else forward_record(net, x, record)).output(layer)
    norm0 = (phi0 * phi0).reshape(n, -1).sum(axis=1)
    if not bool((norm0 > 0).all()):
        raise MinicnnError(f"the representation at {layer!r} is all zeros for some image: nothing to invert")
    if scale is None:
        scale = PIXEL_RANGE.get(net.meta.get("preprocess") or "none", PIXEL_RANGE["none"])
    if not np.isfinite(scale) or scale <= 0:
        raise MinicnnError(f"scale (pixel range B) must be a finite number > 0, got {scale!r}")
    shape = (n,) + (1,) * (phi0.ndim - 1)
    inv_norm = (1.0 / norm0).reshape(shape).astype(net.dtype)

    def objective(z):
        record = net.run(z, stop=layer)
        diff = record.output() - phi0
        loss = (diff * diff).reshape(n, -1).sum(axis=1) * inv_norm.reshape(-1)
        return to_numpy(loss), record.backward(2 * diff * inv_norm, mode="gradient", start=layer)

    ref = reference_image(net, x.shape[1:])
    rng = make_rng(seed)
    noise = rng.standard_normal(x.shape).astype(net.dtype) * net.dtype.type(scale / 10)
    regs = (
        AlphaNorm(alpha_weight, alpha=alpha, scale=scale),
        TotalVariation(tv_weight, beta=beta, scale=scale),
    ) + check_regularizers(regularizers)
    result = run_ascent(
        net,
        ref + xp.asarray(noise),
        objective,
        steps=steps,
        lr=lr * scale,
        regularizers=regs,
        seed=rng,  # the same stream goes on: the modifiers' draws follow the start's noise
        optimizer=optimizer,
        maximize=False,
        ref=ref,
        desc=f"invert {layer}",
        progress=progress,
    )
    result.info["error"] = np.sqrt(np.maximum(result.info["objective"], 0))
    diff = net.run(result.image, stop=layer).output() - phi0
    final = to_numpy((diff * diff).reshape(n, -1).sum(axis=1)).astype(np.float64)
    result.info["final_error"] = np.sqrt(final / to_numpy(norm0))
    return result
