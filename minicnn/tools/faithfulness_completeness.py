"""Completeness: do a map's attributions add up to the score they explain?

A method that claims completeness promises sum_i a_i = S_c(x) - S_c(baseline) for the target's score
S_c before softmax:

- integrated gradients (Sundararajan et al. 2017, sec. 3, "completeness"), up to the error of the
  Riemann sum over the path;
- DeepLIFT (Shrikumar et al. 2017, sec. 3.1, "summation-to-delta"), exactly, against its reference;
- LRP-0 / LRP-epsilon (Bach et al. 2015, sec. 3, relevance conservation) on a network whose biases
  are zero (a bias absorbs relevance), to epsilon's leak;
- gradient x input (Shrikumar et al. 2016) only where the network is piecewise linear and
  positively homogeneous (ReLU, max-pooling, no biases): then S_c(x) = grad S_c(x) . x by Euler's
  theorem and S_c(0) = 0, so it is complete against the zero baseline; with biases it is not.

``completeness`` measures the gap for any attribution; which methods are expected to close it, and
under which condition, is ``CLAIMS``. Quantus 0.6's ``Completeness`` returns whether the two sides
are exactly equal in floating point; the test checks that both agree on exactly representable
cases and that minicnn's gap is the number behind Quantus' verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minicnn.backend import to_numpy
from minicnn.errors import MinicnnError
from minicnn.tools.targets import as_batch, forward_record, resolve_targets

# method -> (paper, the condition under which the claim holds)
CLAIMS = {
    "integrated_gradients": ("Sundararajan et al. 2017", "any network; Riemann-sum error shrinks with steps"),
    "deeplift": ("Shrikumar et al. 2017", "any network, against the same reference"),
    "lrp": ("Bach et al. 2015", "LRP-0 on a network with zero biases"),
    "gradient_x_input": ("Shrikumar et al. 2016", "ReLU/max-pool network with zero biases, zero baseline"),
}


@dataclass
class CompletenessResult:
    """total (N,): sum of each image's attributions; difference (N,): S_c(x) - S_c(baseline);
    gap (N,) = total - difference; relative (N,) = |gap| / max(|difference|, 1e-12); targets (N,)."""

    total: np.ndarray
    difference: np.ndarray
    gap: np.ndarray
    relative: np.ndarray
    targets: np.ndarray


def completeness(net, x, attributions, target="predicted", baseline=0.0, record=None) -> CompletenessResult:
    """The completeness gap of attributions (N, C, H, W) or channel-summed (N, H, W) for images x
    (N, C, H, W) or (C, H, W). baseline: a number or an array shaped like x, in network-input space
    (the reference the method used). Scores are before softmax. All float64 on the host."""
    x = as_batch(net, x)
    a = to_numpy(attributions).astype(np.float64)
    if a.shape[0] != x.shape[0] or a.shape[-2:] != x.shape[-2:] or a.ndim not in (3, 4):
        raise MinicnnError(f"expected attributions shaped like the images {tuple(x.shape)} (or summed over "
                           f"channels), got {a.shape}")  # fmt: skip
    rec = forward_record(net, x, record)
    targets = resolve_targets(target, rec.output())
    base = np.broadcast_to(np.asarray(baseline, dtype=np.float64), x.shape)
    rows = np.arange(len(targets))
    score = to_numpy(rec.output()).astype(np.float64)[rows, targets]
    base_scores = net.run(net.xp.asarray(base, dtype=net.dtype)).output()
    base_score = to_numpy(base_scores).astype(np.float64)[rows, targets]
    total = a.reshape(len(a), -1).sum(axis=1)
    difference = score - base_score
    gap = total - difference
    relative = np.abs(gap) / np.maximum(np.abs(difference), 1e-12)
    return CompletenessResult(total, difference, gap, relative, targets)
