"""Mini-batch SGD with momentum and weight decay, and a cosine learning-rate schedule.

Momentum as in Sutskever et al. (2013, eq. 1) in the form PyTorch uses (the learning rate multiplies
the velocity, so changing it mid-run does not rescale past steps):

    g = dL/dw + weight_decay * w        v = momentum * v + g        w = w - lr * v

Weight decay (L2, Krizhevsky et al. 2012, sec. 5) applies to weights only, not biases.
``train_biases=False`` keeps every bias at its value (zero after initialisation): the network is then
bias-free, so an all-zero input region gives all-zero features (see mnist-gap in models.py).
"""

from __future__ import annotations

import math

from minicnn.backend import get_xp


def cosine_lr(step: int, total: int, base: float, warmup: int = 0) -> float:
    """Learning rate at ``step`` of ``total``: linear warm-up, then cosine decay to zero
    (Loshchilov & Hutter 2017, eq. 5, without restarts)."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * base * (1.0 + math.cos(math.pi * min(1.0, t)))


class SGD:
    """Updates a Sequential's parameters in place from ``net.grads`` (after need_params=True)."""

    def __init__(self, net, momentum=0.9, weight_decay=5e-4, train_biases: bool = True):
        self.net = net
        self.train_biases = bool(train_biases)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.velocity: dict[tuple[str, str], object] = {}

    def step(self, lr: float) -> None:
        """One update with learning rate ``lr`` from the gradients of the last backward pass."""
        for layer, key, w in self.net.parameters():
            if key == "bias" and not self.train_biases:
                continue
            g = self.net.grads[layer.name][key]
            xp = get_xp(w)
            if key == "weight" and self.weight_decay:
                g = g + w.dtype.type(self.weight_decay) * w
            v = self.velocity.get((layer.name, key))
            if v is None:
                v = self.velocity[(layer.name, key)] = xp.zeros_like(w)
            v *= w.dtype.type(self.momentum)
            v += g
            w -= w.dtype.type(lr) * v  # in place: the layer keeps the same array
