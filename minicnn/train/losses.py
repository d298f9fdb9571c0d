"""Softmax cross-entropy, the loss every classifier here is trained with (Bishop 2006, sec. 4.3.4).

p = softmax(s)        L = -mean_n log p[n, y_n]        dL/ds = (p - onehot(y)) / N
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError


def cross_entropy(scores, labels):
    """scores (N, K) float, labels (N,) ints in [0, K) -> (mean loss as float, dL/dscores (N, K)).

    Computed with log-sum-exp so that large scores do not overflow.
    """
    xp = get_xp(scores)
    if scores.ndim != 2 or len(labels) != scores.shape[0]:
        raise MinicnnError(
            f"expected scores (N, K) and N labels, got {tuple(scores.shape)} and {len(labels)}"
        )
    n = scores.shape[0]
    labels = xp.asarray(labels, dtype=np.int64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_z = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_z
    rows = xp.arange(n)
    loss = -float(log_p[rows, labels].mean())
    grad = xp.exp(log_p)
    grad[rows, labels] -= 1.0
    return loss, (grad / n).astype(scores.dtype, copy=False)
