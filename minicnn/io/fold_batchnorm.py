"""Folding an inference-mode BatchNorm into the convolution before it (Ioffe & Szegedy 2015, sec. 3.1).

At inference BatchNorm is a fixed per-channel affine map of the convolution's output z:

    bn(z)[o] = gamma[o] * (z[o] - mean[o]) / sqrt(var[o] + eps) + beta[o]

and z = W x + b is linear, so the pair is one convolution with

    W'[o] = W[o] * a[o]     b'[o] = (b[o] - mean[o]) * a[o] + beta[o]     a[o] = gamma[o] / sqrt(var[o] + eps)

The fold is exact (up to float rounding) for inference only: the running statistics replace the
batch statistics, so training a folded network is not training the BatchNorm network. Loaders fold
at load time, so the engine never sees a BatchNorm layer and every tool (including the three
backward rules, where BatchNorm like a convolution is linear) works unchanged.
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError

TORCH_EPS = 1e-5  # torch.nn.BatchNorm2d's default; a state dict does not store eps


def fold_batchnorm(weight, bias, gamma, beta, mean, var, eps: float = TORCH_EPS):
    """(W', b') of the convolution that equals conv(W, b) followed by inference BatchNorm.

    weight (O, C, kh, kw); bias (O,) or None (a convolution without bias); gamma, beta, mean,
    var (O,). Computed in float64; returns float64 arrays (O, C, kh, kw) and (O,).
    MinicnnError on a shape mismatch or a negative variance.
    """
    weight = np.asarray(weight, dtype=np.float64)
    out = weight.shape[0]
    stats = {"gamma": gamma, "beta": beta, "running mean": mean, "running variance": var}
    stats = {k: np.asarray(v, dtype=np.float64) for k, v in stats.items()}
    for name, value in stats.items():
        if value.shape != (out,):
            raise MinicnnError(f"BatchNorm {name} should have shape ({out},), found {value.shape}")
    if (stats["running variance"] < 0).any() or eps < 0:
        raise MinicnnError("BatchNorm running variance must be >= 0")
    bias = np.zeros(out) if bias is None else np.asarray(bias, dtype=np.float64)
    scale = stats["gamma"] / np.sqrt(stats["running variance"] + eps)
    w = weight * scale[:, None, None, None]
    b = (bias - stats["running mean"]) * scale + stats["beta"]
    return w, b
