"""The data randomisation test (Adebayo et al. 2018, "Sanity Checks for Saliency Maps", sec. 4).

A copy of the shipped VGG-style digit model's architecture is trained, with the engine's own trainer
(minicnn/train), on the same digits with their labels randomly permuted: the network can only
memorise, there is nothing to learn about digits. A saliency method whose maps for that network
still look like the maps of the properly trained one does not depend on the relation between
images and labels, which is what an explanation is meant to show.

    net, info = train_permuted(seed=0)     # ~ a few minutes on two CPU cores
    res = data_randomization_test(trained, net, x, target, methods=[...])

The shipped file ``weights/mnist_vgg_permuted.h5`` was made by ``python -m minicnn.tools.sanity_data``
(its ``meta["provenance"]`` records the recipe, the seed and both accuracies).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.paths import WEIGHTS_DIR
from minicnn.tools.sanity_methods import all_attributions, check_methods
from minicnn.tools.sanity_protocols import DEFAULT_PROTOCOL, check_protocol, compare
from minicnn.tools.targets import as_batch, forward_record, resolve_targets

PERMUTED_MODEL = WEIGHTS_DIR / "mnist_vgg_permuted.h5"

# The recipe: mnist-vgg's architecture and optimiser, without the shift augmentation, the weight
# decay and the dropout, which all fight memorisation (Zhang et al. 2017, "Understanding deep
# learning requires rethinking generalization", sec. 2: random labels are fitted by memorising each
# image). With mnist-vgg's recipe on all 4,500 training digits the loss stayed at log(10) = 2.30 for
# nine epochs (the network settled on the uniform distribution), and memorising them all would take
# hours on two CPU cores, so the run memorises a seeded subset of TRAIN_SIZE digits instead.
PERMUTED_RECIPE = {"epochs": 40, "max_shift": 0, "weight_decay": 0.0, "lr": 0.03, "batch_size": 32}
DROPOUT_WHILE_TRAINING = 0.0
TRAIN_SIZE = 1000


def train_permuted(seed: int = 0, epochs: int | None = None, progress: bool = True):
    """Train mnist-vgg's architecture on training digits with permuted labels.

    TRAIN_SIZE digits of the training split (minicnn/train/data.py) are drawn and their labels
    shuffled by ``numpy.random.default_rng(seed)``; the network is initialised with ``seed`` and
    trained with ``PERMUTED_RECIPE``. Returns (net, provenance dict): the dict (also stored in
    ``net.meta["provenance"]``) records the recipe, the training accuracy on the permuted labels,
    the held-out accuracy on the true labels (chance is 0.10) and the time taken.
    """
    from minicnn.train import data
    from minicnn.train.loop import TrainConfig, accuracy, train
    from minicnn.train.models import MODELS, build

    recipe = dict(PERMUTED_RECIPE, **({"epochs": int(epochs)} if epochs is not None else {}))
    net = build("mnist-vgg", seed)
    config = TrainConfig(**{**MODELS["mnist-vgg"][1].__dict__, **recipe, "seed": seed})
    images, labels, source = data.load_mnist()
    x_train, y_train, x_held, y_held = data.split(images, labels)
    rng = np.random.default_rng(seed)
    subset = np.sort(rng.choice(len(y_train), TRAIN_SIZE, replace=False))
    permuted = rng.permutation(np.asarray(y_train, np.int64)[subset])
    x_train = data.to_input(x_train[subset])
    dropouts = [layer for layer in net.layers if layer.is_identity_at_inference]
    kept = [layer.p for layer in dropouts]
    for layer in dropouts:
        layer.p = DROPOUT_WHILE_TRAINING
    start = time.perf_counter()
    history = train(net, x_train, permuted, config, progress=progress)
    for layer, p in zip(dropouts, kept):  # the saved file keeps mnist-vgg's layers (identity at inference)
        layer.p = p
    provenance = {
        "what": "mnist-vgg architecture trained on PERMUTED labels (data randomisation test, "
        "Adebayo et al. 2018, sec. 4)",
        "data": source,
        "split": data.SPLIT_RULE,
        "train_subset": f"{TRAIN_SIZE} digits of the training split: sorted(rng.choice(n, {TRAIN_SIZE}, "
        f"replace=False)) with rng = numpy.random.default_rng({seed})",
        "label_permutation": "rng.permutation(their labels), the same rng next",
        "seed": int(seed),
        **{k: recipe[k] for k in sorted(recipe)},
        "dropout_while_training": DROPOUT_WHILE_TRAINING,
        "steps": int(history.steps),
        "schedule": f"cosine, {config.warmup} warm-up steps",
        "momentum": config.momentum,
        "loss": history.loss,
        "train_accuracy_permuted_labels": accuracy(net, x_train, permuted),
        "heldout_accuracy_true_labels": accuracy(net, data.to_input(x_held), y_held),
        "train_seconds": round(time.perf_counter() - start, 1),
        "command": "python -m minicnn.tools.sanity_data",
        "trained_by": "minicnn",
    }
    net.meta["provenance"] = provenance
    net.meta["architecture"] = "mnist-vgg-permuted-labels"
    return net, provenance


@dataclass
class DataRandomizationResult:
    """maps[method]: (2, N, H, W) float64, row 0 the trained network's, row 1 the permuted-label
    network's; similarity[method][measure]: mean over the N images of the comparison of the two
    networks' attributions under ``protocol`` (sanity_protocols.measures); targets: (N,) classes
    explained in both networks."""

    methods: list
    maps: dict = field(repr=False)
    similarity: dict
    targets: np.ndarray
    protocol: str = DEFAULT_PROTOCOL


def data_randomization_test(
    trained,
    randomized,
    x,
    target="predicted",
    methods=("gradient",),
    seed: int = 0,
    record=None,
    protocol: str = DEFAULT_PROTOCOL,
) -> DataRandomizationResult:
    """Compare the maps of two networks of one architecture on the same images and classes.

    trained: the network trained on true labels; randomized: the one trained on permuted labels.
    x: (N, C, H, W) or (C, H, W) in network-input space; target: class index, list or "predicted"
    (the trained network's prediction; the same classes are explained in both networks).
    methods: names from ``sanity_methods.METHODS``. seed: SmoothGrad's noise. protocol: how the
    maps are compared (sanity_protocols.PROTOCOLS).
    """
    protocol = check_protocol(protocol)
    methods = check_methods(trained, methods)
    check_methods(randomized, methods)
    x = as_batch(trained, x)
    if [p for p in trained.names] != [p for p in randomized.names]:
        raise MinicnnError("the data randomisation test needs two networks with the same layers")
    targets = resolve_targets(target, forward_record(trained, x, record).output())
    maps, sims = {}, {}
    first = all_attributions(trained, x, targets, methods, seed)
    second = all_attributions(randomized, x, targets, methods, seed)
    for method in methods:
        a, b = first[method], second[method]
        maps[method] = np.stack([a.sum(axis=1), b.sum(axis=1)])
        sims[method] = {k: float(v.mean()) for k, v in compare(a, b, protocol).items()}
    return DataRandomizationResult(list(methods), maps, sims, targets, protocol)


def main() -> int:
    """Retrain and write ``weights/mnist_vgg_permuted.h5`` (seed 0)."""
    from minicnn.io.native import save

    net, prov = train_permuted(seed=0)
    save(net, PERMUTED_MODEL)
    print(
        f"wrote {PERMUTED_MODEL}: train accuracy on permuted labels "
        f"{prov['train_accuracy_permuted_labels']:.3f}, held-out accuracy on true labels "
        f"{prov['heldout_accuracy_true_labels']:.3f}, {prov['train_seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
