"""Integrated Gradients (Sundararajan, Taly & Yan 2017, "Axiomatic attribution for deep networks").

The attribution of input entry i is the path integral of the gradient along the straight line from
a baseline x' to the image x (sec. 3, eq. 1):

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x')) / dx_i da

It is complete (sec. 3, "Completeness"): sum_i IG_i(x) = F(x) - F(x'), exactly for the integral and
up to the quadrature's error for the sum that approximates it (sec. 5: "between 20 and 300 steps").
``completeness_gap`` measures that error for any map.

The integral is approximated by a quadrature with nodes a_k and weights w_k (``path_nodes``),
the methods Captum offers (Kokhlikyan et al. 2020), with the nodes computed in float64:

    riemann_left       a_k = k / n,           w_k = 1 / n              k = 0 .. n-1
    riemann_right      a_k = (k + 1) / n,     w_k = 1 / n
    riemann_middle     a_k = (k + 1/2) / n,   w_k = 1 / n
    riemann_trapezoid  a_k = k / (n - 1),     w_k = 1 / n, halved at both ends (n >= 2)
    gausslegendre      Gauss-Legendre nodes and weights on [-1, 1] mapped to [0, 1]

NOTE Captum's conventions differ from these float64 values in two ways: it rounds every weight to
float32 (``torch.tensor(step_sizes).float()``) whatever the input's dtype, and it computes the
Riemann nodes with ``torch.linspace`` in torch's default dtype (float32 unless changed). In float64,
with torch's default dtype float64, its map is this one with w_k replaced by float32(w_k)
(tests/tools/test_integrated_gradients.py measures that).

On a network without biases whose layers are positively homogeneous (convolutions, dense layers,
ReLU, max and average pooling), F(a x) = a F(x), so the gradient is the same at every point a x of
the path from the zero baseline and IG equals gradient x input (sec. 3 of Ancona et al. 2018).
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp, to_numpy
from minicnn.errors import MinicnnError
from minicnn.tools.targets import as_batch, forward_record, one_hot, resolve_targets

#: the quadratures of the path integral (see the module docstring), by Captum's names
QUADRATURES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def path_nodes(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(a (steps,), w (steps,)) float64: the points a_k of [0, 1] where the gradient is taken and
    the weights of the quadrature (they sum to 1 up to rounding). See the module docstring."""
    if method not in QUADRATURES:
        raise MinicnnError(f"unknown integration method {method!r}; expected one of {', '.join(QUADRATURES)}")
    least = 2 if method == "riemann_trapezoid" else 1  # the trapezoid needs both ends
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < least:
        raise MinicnnError(f"steps must be an integer >= {least} for {method}, got {steps!r}")
    n = int(steps)
    k = np.arange(n, dtype=np.float64)
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return 0.5 * (nodes + 1.0), 0.5 * weights
    weights = np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":
        weights[[0, -1]] /= 2
        return k / (n - 1), weights
    shift = {"riemann_left": 0.0, "riemann_middle": 0.5, "riemann_right": 1.0}[method]
    return (k + shift) / n, weights


def as_baseline(baseline, x):
    """The baseline as an array shaped like x (N, C, H, W), of x's dtype, on x's device.

    baseline: a number (every entry), a (C, H, W) image (every image) or an (N, C, H, W) batch."""
    xp = get_xp(x)
    try:
        b = xp.asarray(baseline, dtype=x.dtype)
    except (TypeError, ValueError):
        raise MinicnnError(f"baseline must be a number or an array, got {type(baseline).__name__}") from None
    if (
        b.ndim not in (0, 3, 4)
        or (b.ndim and tuple(b.shape[-3:]) != tuple(x.shape[1:]))
        or (b.ndim == 4 and len(b) != len(x))
    ):
        raise MinicnnError(
            f"baseline must be a number, a {tuple(x.shape[1:])} image or a {tuple(x.shape)} batch, "
            f"got shape {tuple(b.shape)}"
        )
    if not bool(xp.isfinite(b).all()):
        raise MinicnnError("baseline must be finite")
    return xp.broadcast_to(b, x.shape)


def integrated_gradients(
    net,
    x,
    target="predicted",
    baseline=0.0,
    steps: int = 50,
    method: str = "gausslegendre",
    batch_size: int = 64,
    record=None,
):
    """Integrated Gradients (Sundararajan et al. 2017, eq. 1) of the target class scores.

    Args:
        net: a Sequential or Graph ending in class scores (N, K).
        x: images (N, C, H, W) in network-input space, or one (C, H, W) image.
        target: class index, list of N indices, or "predicted" (argmax of the scores of x).
        baseline: x', a number, a (C, H, W) image or an (N, C, H, W) batch (default 0: black in
            network-input space only where preprocessing maps black to 0).
        steps: quadrature points n. method: one of QUADRATURES (default Gauss-Legendre, as Captum).
        batch_size: path points per forward/backward pass (whole steps of the batch, at least one).
        record: the PassRecord of a forward pass over x already run by the caller (reused for the
            targets).

    Returns:
        (N, C, H, W) array of net.dtype: (x - x') * sum_k w_k dF_t/dx (x' + a_k (x - x')).
        ``completeness_gap(net, x, result, target, baseline)`` says how far its sums are from
        F_t(x) - F_t(x').
    """
    x = as_batch(net, x)
    nodes, weights = path_nodes(method, steps)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise MinicnnError(f"batch_size must be a positive integer, got {batch_size!r}")
    base = as_baseline(baseline, x)
    targets = resolve_targets(target, forward_record(net, x, record, keep="input-gradient").output())
    xp = get_xp(x)
    delta = x - base
    total = xp.zeros_like(x)
    per_pass = max(1, int(batch_size) // len(x))  # whole steps per pass, each step all N images
    for start in range(0, len(nodes), per_pass):
        a = nodes[start : start + per_pass]
        w = weights[start : start + per_pass]
        # the path points of these steps, step-major: (len(a) * N, C, H, W)
        points = base[None] + xp.asarray(a, dtype=x.dtype)[:, None, None, None, None] * delta[None]
        points = points.reshape(-1, *x.shape[1:])
        rec = net.run(points, keep="input-gradient")  # scores and the gradient only
        grad = rec.backward(one_hot(np.tile(targets, len(a)), rec.output()), mode="gradient", release=True)
        grad = grad.reshape(len(a), *x.shape)
        total += (xp.asarray(w, dtype=x.dtype)[:, None, None, None, None] * grad).sum(axis=0)
    return delta * total


def completeness_gap(net, x, attribution, target="predicted", baseline=0.0) -> np.ndarray:
    """sum_i attribution[n, i] - (F_t(x_n) - F_t(x'_n)) per image, (N,) float64 on the host.

    The completeness axiom of Sundararajan et al. (2017, sec. 3) says this is 0 for Integrated
    Gradients (up to the quadrature's error) and Shrikumar et al. (2017, eq. 1) say it for DeepLIFT
    ("summation-to-delta"). attribution: (N, C, H, W) or (N, H, W), any method's map; target and
    baseline as in ``integrated_gradients`` ("predicted" means the class of x). Two forward passes.
    """
    x = as_batch(net, x)
    attribution = np.asarray(to_numpy(attribution), dtype=np.float64)
    if attribution.shape[0] != len(x) or attribution.ndim not in (3, 4):
        raise MinicnnError(f"attribution must be (N, C, H, W) or (N, H, W) for {len(x)} image(s), "
                           f"got shape {attribution.shape}")  # fmt: skip
    scores = to_numpy(net.run(x).output()).astype(np.float64)
    targets = resolve_targets(target, scores)
    base = to_numpy(net.run(as_baseline(baseline, x)).output()).astype(np.float64)
    rows = np.arange(len(x))
    difference = scores[rows, targets] - base[rows, targets]
    return attribution.reshape(len(x), -1).sum(axis=1) - difference
