"""A Keras 2 full-model file (the ``model.save`` layout of Keras 2.x, written here with h5py).

Keras 2 files differ from Keras 3 ones in the config (``batch_input_shape``, list-style
``inbound_nodes``, class name "Model"), in the weight names (``conv2d_1/kernel:0``) and in storing
attributes as bytes. The weights come from a real Keras 3 model, whose predictions are the reference.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
from io_helpers import keras_scores, seed_weights
from support import assert_close

import minicnn as mc


def keras2_config(names):
    conv1, conv2, pool, flat, dense = names
    layers = [
        {"class_name": "InputLayer", "name": "input_1",
         "config": {"batch_input_shape": [None, 12, 10, 3], "dtype": "float32", "name": "input_1"},
         "inbound_nodes": []},
        {"class_name": "Conv2D", "name": conv1,
         "config": {"name": conv1, "filters": 5, "kernel_size": [3, 3], "strides": [1, 1],
                    "padding": "same", "data_format": "channels_last", "dilation_rate": [1, 1],
                    "activation": "relu", "use_bias": True},
         "inbound_nodes": [[["input_1", 0, 0, {}]]]},
        {"class_name": "Conv2D", "name": conv2,
         "config": {"name": conv2, "filters": 6, "kernel_size": [3, 3], "strides": [2, 2],
                    "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1],
                    "activation": "linear", "use_bias": True},
         "inbound_nodes": [[[conv1, 0, 0, {}]]]},
        {"class_name": "MaxPooling2D", "name": pool,
         "config": {"name": pool, "pool_size": [2, 2], "padding": "valid", "strides": [2, 2],
                    "data_format": "channels_last"},
         "inbound_nodes": [[[conv2, 0, 0, {}]]]},
        {"class_name": "Flatten", "name": flat, "config": {"name": flat},
         "inbound_nodes": [[[pool, 0, 0, {}]]]},
        {"class_name": "Dense", "name": dense,
         "config": {"name": dense, "units": 4, "activation": "softmax", "use_bias": True},
         "inbound_nodes": [[[flat, 0, 0, {}]]]},
    ]  # fmt: skip
    return {"class_name": "Model", "config": {"name": "model_1", "layers": layers}}


def test_keras2_model_file(keras, tmp_path):
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((12, 10, 3)),
            L.Conv2D(5, 3, padding="same", activation="relu"),
            L.Conv2D(6, 3, strides=2),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(4, activation="softmax"),
        ]
    )
    seed_weights(model, 11)
    images = np.random.default_rng(5).uniform(0, 255, (2, 12, 10, 3)).astype(np.float32)
    probs, scores = keras_scores(keras, model, images)
    names = ["conv2d_1", "conv2d_2", "max_pooling2d_1", "flatten_1", "dense_1"]
    path = tmp_path / "keras2_model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(keras2_config(names)).encode()
        f.attrs["keras_version"] = b"2.2.4"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([b"input_1", *[n.encode() for n in names]])
        f.create_group("model_weights/input_1").attrs["weight_names"] = np.array([], dtype="S")
        for name, layer in zip(names, model.layers, strict=True):
            weights = layer.get_weights()
            wnames = [f"{name}/{k}:0" for k in ("kernel", "bias")][: len(weights)]
            lg = g.create_group(name)
            lg.attrs["weight_names"] = np.array([n.encode() for n in wnames], dtype="S")
            for wn, value in zip(wnames, weights, strict=True):
                lg.create_dataset(wn, data=value)
    net, fmt = mc.load(path, with_format=True)
    assert fmt == "keras-model" and net.meta["final_activation"] == "softmax"
    assert net.meta["input_shape"] == [3, 12, 10]
    assert_close(net.forward(mc.preprocess(images, "none")), scores, what="keras2 model scores")
