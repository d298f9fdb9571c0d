"""DeepLIFT with the Rescale rule (Shrikumar, Greenside & Kundaje 2017, sec. 3).

DeepLIFT explains the difference of the target's score from its value at a reference input x0,
f_t(x) - f_t(x0), by contributions of x - x0. Multipliers are carried down from the output: a
linear layer (convolution, dense, pooling by average, BatchNorm, the residual sum) takes its
gradient (the linear rule, sec. 3.5.1), a ReLU the slope of its secant (y - y0) / (x - x0)
between the two forward passes (the Rescale rule, sec. 3.5.2; the gradient where x == x0), and
the attribution is (x - x0) times the multiplier at the input. It sums to f_t(x) - f_t(x0) exactly
(summation-to-delta, eq. 1) on networks of ReLU and linear layers.

Max-pooling: the multiplier goes to the maximum of the input's window (the gradient through the
input's switches), DeepLIFT's own "gradient" max-pool mode, which also keeps summation-to-delta
only approximately where the two passes pick different maxima. Captum's DeepLift differs there: it
splits max(y, y0) - y0 and y - max(y, y0), routes them through the input's and the reference's
switches and divides their sum by x - x0 (its ``maxpool2d``; exact summation-to-delta for the
pool). With its max-pool as a plain function the two maps are equal; in Captum 0.9 its rule takes
effect only where no ReLU is next to the max-pool, so on VGG's order (ReLU, then max-pool) the
two maps are equal too (tests/tools/test_deeplift_captum.py measures both).

On a bias-free ReLU network with a zero reference, every ReLU's reference input is 0, its secant
is its gradient, and DeepLIFT is gradient x input, equal to epsilon-LRP with epsilon -> 0 (Ancona
et al. 2018, sec. 3.2).
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError
from minicnn.rules import DeepLift
from minicnn.tools.targets import as_batch, forward_record, one_hot, resolve_targets


def reference_batch(x, baseline):
    """The reference x0 shaped and typed like x (N, C, H, W): a number, a (C, H, W) image for every
    image, or (N, C, H, W) one per image."""
    xp = get_xp(x)
    b = xp.asarray(baseline, dtype=x.dtype)
    if (
        b.ndim not in (0, 3, 4)
        or (b.ndim and tuple(b.shape[-3:]) != tuple(x.shape[1:]))
        or (b.ndim == 4 and len(b) != len(x))
    ):
        raise MinicnnError(
            f"baseline must be a number, a (C, H, W) = {tuple(x.shape[1:])} image or one per image "
            f"{tuple(x.shape)}; got shape {tuple(b.shape)}"
        )
    if not bool(xp.isfinite(b).all()):
        raise MinicnnError("baseline must be finite")
    return xp.ascontiguousarray(xp.broadcast_to(b, x.shape))


def deeplift(net, x, target="predicted", baseline=0, *, record=None):
    """DeepLIFT-Rescale maps of the target class scores for a batch of images.

    Args:
        net: a Sequential or Graph ending in class scores (N, K).
        x: images (N, C, H, W) in network-input space, or one (C, H, W) image.
        target: class index, list of N indices, or "predicted" (argmax of x's scores).
        baseline: the reference input x0: a number (0: the zero image), a (C, H, W) image, or an
            (N, C, H, W) batch.
        record: the PassRecord of a forward pass over x already run by the caller (reused).

    Returns:
        (N, C, H, W) array of net.dtype: (x - x0) times DeepLIFT's multipliers; each map sums to
        f_t(x) - f_t(x0) on networks of ReLU and linear layers.
    """
    x = as_batch(net, x)
    x0 = reference_batch(x, baseline)
    rec = forward_record(net, x, record)
    scores = rec.output()
    dy = one_hot(resolve_targets(target, scores), scores)
    multipliers = rec.backward(dy, mode=DeepLift(net.run(x0)))
    return (x - x0) * multipliers
