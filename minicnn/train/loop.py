"""The training loop: shuffled mini-batches, shift augmentation, SGD, per-epoch held-out accuracy.

Everything random (shuffling, shifts, dropout masks) comes from one ``numpy.random.Generator``
seeded by ``seed``, and initialisation from the network's own seed, so the same seeds give the same
weights bit for bit on the same machine and NumPy build.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from minicnn.errors import MinicnnError
from minicnn.seeding import make_rng
from minicnn.train.augment import background_noise, random_shift
from minicnn.train.losses import cross_entropy
from minicnn.train.optim import SGD, cosine_lr


@dataclass
class TrainConfig:
    """Hyper-parameters of one run (stored in the model's provenance)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    max_shift: int = 2
    noise: float = 0.0  # background noise amplitude (pixels / 255 units), see augment.py
    train_biases: bool = True  # False: biases stay at zero (a bias-free network)
    warmup: int = 50  # steps
    seed: int = 0
    max_steps: int | None = None  # stop early (tests)


@dataclass
class History:
    """Per-epoch mean training loss and held-out accuracy (None without a held-out set)."""

    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    steps: int = 0


def predict(net, x, batch_size: int = 500) -> np.ndarray:
    """Predicted class (N,) int64 for inputs x (N, C, H, W) float32, in inference mode: passes that
    keep the scores alone (keep="output": no caches, ReLUs fused; ``net.last`` is left as it was)."""
    out = [
        np.asarray(net.run(x[i : i + batch_size], keep="output").output()).argmax(axis=1)
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out)


def accuracy(net, x, labels) -> float:
    """Fraction of x (N, C, H, W) float32 classified as ``labels`` (N,)."""
    return float((predict(net, x) == np.asarray(labels)).mean())


def train(net, x, labels, config: TrainConfig, heldout=None, progress: bool = True) -> History:
    """Train ``net`` in place on x (N, C, H, W) float32 with integer labels (N,).

    heldout: optional (x_held, labels_held), evaluated after every epoch. Returns the History.
    """
    x = np.asarray(x)
    labels = np.asarray(labels, dtype=np.int64)
    if x.ndim != 4 or len(x) != len(labels) or len(x) < config.batch_size:
        raise MinicnnError(
            f"expected x (N, C, H, W) with N >= batch size {config.batch_size} and N labels, "
            f"got {x.shape} and {labels.shape}"
        )
    rng = make_rng(config.seed)
    sgd = SGD(net, config.momentum, config.weight_decay, config.train_biases)
    per_epoch = len(x) // config.batch_size  # drop the ragged last batch: every step sees a full batch
    total = per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    history = History()
    for epoch in range(config.epochs):
        if history.steps >= total:
            break
        order = rng.permutation(len(x))
        losses = []
        bar = tqdm(
            range(per_epoch),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not progress,
            leave=False,
        )
        for b in bar:
            if history.steps >= total:
                break
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            xb = random_shift(x[idx], config.max_shift, rng)
            xb = background_noise(xb, config.noise, rng)
            scores = net.forward(xb, train=True, rng=rng)
            loss, dscores = cross_entropy(scores, labels[idx])
            net.backward(dscores, need_params=True)
            sgd.step(cosine_lr(history.steps, total, config.lr, config.warmup))
            history.steps += 1
            losses.append(loss)
            bar.set_postfix(loss=f"{loss:.3f}")
        bar.close()
        history.loss.append(float(np.mean(losses)))
        acc = accuracy(net, *heldout) if heldout is not None else None
        history.accuracy.append(acc)
        if progress:
            held = f"  held-out accuracy {acc:.4f}" if acc is not None else ""
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: loss {history.loss[-1]:.4f}{held}")
    return history
