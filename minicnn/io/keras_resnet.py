"""Keras functional models that branch (residual blocks: keras.applications.ResNet50 ... ResNet152,
ResNet50V2 ... ResNet152V2) as a Graph.

minicnn.io.loader asks ``read_keras_file`` first. A Keras full-model file (``model.save("x.h5")``)
whose ``model_config`` is a Functional model with an ``Add`` layer is read here; chains stay with
minicnn.io.keras_model. Each Keras layer reads the layers named in its ``inbound_nodes``; the
layers are listed in an order where each comes after what it reads (Keras writes them so; anything
else is refused naming the layer). Weight-only files whose layer names are keras.applications
ResNet's (v1 or v2) are rebuilt from those names (minicnn.io.keras_layouts). Mapping:

    Conv2D, Dense, MaxPooling2D, GlobalAveragePooling2D, Flatten, Dropout, Activation / ReLU
                            as in minicnn.io.keras_model (fused relu split off, softmax at the end)
    BatchNormalization      folded into the Conv2D it reads (minicnn.io.fold_batchnorm, the
                            layer's epsilon) when nothing else reads that convolution; otherwise
                            (ResNetV2's pre-activation: it reads a sum that the shortcut reads
                            too) kept as a BatchNorm2D layer with its statistics
    ZeroPadding2D(p)        symmetric p becomes the padding of the one layer that reads it: a
                            valid Conv2D (zeros, as Keras pads), or a valid MaxPooling2D whose
                            input is a ReLU's output (a maximum over non-negative numbers and
                            zeros equals the maximum over the numbers alone, the -inf padding of
                            MaxPool2D, since every window holds a real cell); before a max pooling
                            of signed numbers (ResNetV2's stem) the zeros matter, and the padding
                            stays a node: a 1 x 1 identity Conv2D with padding p
    Add                     Add (two or more inputs)

Weights come from ``model_weights`` by layer name, as for chains; BatchNormalization stores
[gamma, beta, moving_mean, moving_variance] (gamma or beta absent when scale / center is off).
A model named resnet50, resnet101 or resnet152 gets Keras' "caffe" preprocessing
(keras.applications.resnet uses it); the v2 models' "tf" preprocessing (x / 127.5 - 1) is not one
of minicnn.io.preprocess.CONVENTIONS, so their meta names none (the caller scales the input). Any
of them with 1000 outputs gets the ImageNet class names.
"""

from __future__ import annotations

import json

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.io.fold_batchnorm import fold_batchnorm
from minicnn.io.h5check import read_array
from minicnn.io.h5common import assign, attr_str
from minicnn.io.keras_layouts import (
    DEPTHS,
    blocks_per_stage,
    is_preactivation,
    looks_like_resnet,
    resnet_config,
    resnet_v2_config,
)
from minicnn.io.keras_model import _convert, _input_shape, _is_last, _pair, _predecessors, _spec_name
from minicnn.io.keras_weights import keras3_weights, legacy_root, legacy_weights, params_from_keras
from minicnn.record import INPUT

CAFFE_MODELS = ("resnet50", "resnet101", "resnet152")


def branches(config: dict) -> bool:
    """True when ``config`` (a Keras model_config) is a Functional model with an Add layer."""
    inner = config.get("config")
    if config.get("class_name") == "Sequential" or not isinstance(inner, dict):
        return False
    return any(spec.get("class_name") == "Add" for spec in inner.get("layers", []))


def _zero_padding(spec, name) -> int:
    """The symmetric padding of a ZeroPadding2D spec; MinicnnError for anything else."""
    pad = spec.get("config", {}).get("padding", 1)
    if isinstance(pad, int):
        return pad
    rows, cols = (_pair(p, "padding", name) for p in pad) if isinstance(pad[0], list) else [tuple(pad)] * 2
    if rows[0] != rows[1] or cols[0] != cols[1] or rows[0] != cols[0]:
        raise MinicnnError(f"Keras layer {name!r}: only equal padding on every side is supported, got {pad}")
    return int(rows[0])


def build_graph(config: dict):
    """(nodes, meta, batchnorms, pads) from a branching Functional ``model_config``.

    nodes: [(layer, input names)] for minicnn.graph.Graph; batchnorms: conv name -> the Keras
    BatchNormalization spec folded into it, and a kept BatchNorm's own name -> its spec; pads: the
    names of the identity convolutions that stand for a ZeroPadding2D (``_padded``). MinicnnError
    naming the layer for anything unsupported.
    """
    from minicnn import layers as L

    inner = config["config"]
    specs = inner.get("layers", [])
    shape = _input_shape(specs)
    if shape is None:
        raise MinicnnError("the Keras model has no input shape (expected an InputLayer)")
    meta = {"input_shape": list(shape), "architecture": inner.get("name", "keras"), "final_activation": None}
    readers: dict[str, int] = {}
    for spec in specs:
        for pred in _predecessors(spec):
            readers[pred] = readers.get(pred, 0) + 1
    source: dict[str, str] = {}  # Keras layer name -> the minicnn node computing its output
    shapes = {INPUT: tuple(shape)}
    padded: dict[str, int] = {}  # ZeroPadding2D name -> its padding, consumed by its one reader
    nodes, by_name, batchnorms, pads = [], {}, {}, set()
    for i, spec in enumerate(specs):
        cls, name = spec.get("class_name"), _spec_name(spec)
        preds = _predecessors(spec)
        if cls == "InputLayer":
            source[name] = INPUT
            continue
        unknown = [p for p in preds if p not in source and p not in padded]
        if not preds or unknown:
            raise MinicnnError(
                f"Keras layer {name!r} reads {unknown or 'nothing'}, not a layer listed before it"
            )
        if cls == "Add":
            if any(p in padded for p in preds) or len(preds) < 2:
                raise MinicnnError(f"Keras layer {name!r}: Add of {len(preds)} unpadded inputs expected")
            inputs = tuple(source[p] for p in preds)
            if len({shapes[s] for s in inputs}) != 1:
                listed = ", ".join(str(shapes[s]) for s in inputs)
                raise MinicnnError(f"Keras layer {name!r}: inputs of shapes {listed} do not add")
            new = [L.Add(name=name)]
        else:
            if len(preds) != 1:
                raise MinicnnError(f"Keras layer {name!r} ({cls}) takes one input, reads {preds}")
            (pred,) = preds
            if cls == "ZeroPadding2D":
                if readers.get(name, 0) != 1 or pred in padded:
                    raise MinicnnError(f"Keras layer {name!r}: a ZeroPadding2D must have exactly one reader")
                padded[name], source[name] = _zero_padding(spec, name), source[pred]
                continue
            inputs = source[pred]
            if cls == "BatchNormalization":
                if pred in padded:
                    raise MinicnnError(f"Keras layer {name!r}: BatchNormalization after zero padding")
                if spec.get("config", {}).get("axis", -1) not in (-1, 3, [3], [-1]):
                    raise MinicnnError(
                        f"Keras layer {name!r}: BatchNormalization over the channel axis expected"
                    )
                conv = by_name.get(inputs)
                if conv is not None and conv.is_convolution and readers.get(pred, 0) == 1:
                    batchnorms[inputs] = spec  # folded into the convolution that alone reads it
                    source[name] = inputs
                    continue
                # a pre-activation BatchNorm (ResNetV2: it reads a sum or a pool that the shortcut
                # reads too): kept as a layer, its statistics assigned to it
                batchnorms[name] = spec
                new = [L.BatchNorm2D(shapes[inputs][0], eps=_epsilon(spec), name=name)]
            else:
                position = "last" if _is_last(specs, i) else "inner"
                new, act, _ = _convert(spec, shapes[inputs], position)
                meta["final_activation"] = act or meta["final_activation"]
                if pred in padded:
                    new = _padded(new, cls, padded[pred], pred, name, by_name.get(inputs), shapes[inputs])
                    if new[0].name == pred:
                        pads.add(pred)
        for k, layer in enumerate(new):
            reads = inputs if k == 0 else new[k - 1].name
            given = [shapes[r] for r in reads] if isinstance(reads, tuple) else shapes[reads]
            try:
                shapes[layer.name] = tuple(layer.output_shape(given))
            except MinicnnError as exc:
                raise MinicnnError(f"Keras layer {name!r}: {exc}") from None
            nodes.append((layer, reads))
            by_name[layer.name] = layer
        source[name] = new[-1].name
    output = _spec_name(specs[-1]) if specs else None
    if not nodes or source.get(output) != nodes[-1][0].name:
        raise MinicnnError("the Keras model's last layer is not its output")
    return nodes, meta, batchnorms, pads


def _padded(new, cls, p, pad_name, name, producer, shape) -> list:
    """The layers ``new`` of a Keras layer read after a ZeroPadding2D of ``p``, the padding built in:
    a valid Conv2D takes it as its own (zeros, as Keras pads); a valid MaxPooling2D reading a ReLU
    takes it as its -inf padding (every window holds a real cell, and a maximum over non-negative
    numbers is not changed by zeros); a MaxPooling2D reading signed numbers (ResNetV2's stem reads
    the first convolution) is given the zeros themselves, by a 1 x 1 identity convolution with
    padding ``p`` named after the padding layer (weights set by ``identity_padding``)."""
    from minicnn import layers as L

    layer = new[0]
    if cls == "Conv2D" and layer.padding == 0:
        conv = L.Conv2D(shape[0], layer.out_channels, layer.kernel_size, layer.stride, p, name=layer.name)
        return [conv, *new[1:]]
    if cls == "MaxPooling2D" and layer.padding == 0 and producer is not None and producer.is_rectifier:
        return [L.MaxPool2D(layer.kernel_size, layer.stride, padding=p, name=layer.name), *new[1:]]
    if cls == "MaxPooling2D" and layer.padding == 0:
        return [L.Conv2D(shape[0], shape[0], 1, 1, p, name=pad_name), *new]
    raise MinicnnError(
        f"Keras layer {name!r}: zero padding is supported before a valid Conv2D or a valid MaxPooling2D"
    )


def identity_padding(layer) -> dict:
    """The parameters of the 1 x 1 convolution that stands for a ZeroPadding2D (see ``_padded``):
    weight[o, c] = [o == c], bias 0, so its output is its input surrounded by zeros."""
    channels = layer.param_shapes()["weight"][0]
    return {
        "weight": np.eye(channels, dtype=np.float32)[:, :, None, None],
        "bias": np.zeros(channels, np.float32),
    }


def _epsilon(spec) -> float:
    return float(spec.get("config", {}).get("epsilon", 1e-3))


def _batchnorm_stats(spec, arrays, channels: int):
    """(gamma, beta, mean, var, eps) of a Keras BatchNormalization from its stored arrays."""
    cfg, name = spec.get("config", {}), _spec_name(spec)
    scale, center = cfg.get("scale", True), cfg.get("center", True)
    expected = int(scale) + int(center) + 2
    if len(arrays) != expected:
        raise MinicnnError(
            f"Keras layer {name!r}: expected {expected} BatchNormalization weights, found {len(arrays)}"
        )
    read = [read_array(a, (channels,), f"layer {name!r}: BatchNormalization weight") for a in arrays]
    gamma = read.pop(0) if scale else np.ones(channels)
    beta = read.pop(0) if center else np.zeros(channels)
    return gamma, beta, read[0], read[1], _epsilon(spec)


def _load_weights(nodes, batchnorms, pads, weights: dict) -> None:
    """Assign every layer's weights from ``weights`` (Keras layer name -> stored arrays, h5py
    Datasets read only after their shapes are checked), each BatchNormalization folded into its
    convolution."""
    for layer, _ in nodes:
        if not layer.has_params:
            continue
        bn = batchnorms.get(layer.name)
        if bn is not None and _spec_name(bn) == layer.name:  # a BatchNorm kept as a layer
            if layer.name not in weights:
                raise MinicnnError(f"weights of layer {layer.name!r} are missing")
            channels = layer.param_shapes()["weight"][0]
            gamma, beta, mean, var, _ = _batchnorm_stats(bn, list(weights[layer.name]), channels)
            stats = {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": var}
            assign(layer, {key: value.astype(np.float32) for key, value in stats.items()})
            continue
        if layer.name in pads:  # a ZeroPadding2D's stand-in: it has no weights in the file
            assign(layer, identity_padding(layer))
            continue
        if layer.name not in weights:
            raise MinicnnError(f"weights of layer {layer.name!r} are missing")
        params = params_from_keras(layer, list(weights[layer.name]))
        if bn is not None:
            bn_name = _spec_name(bn)
            if bn_name not in weights:
                raise MinicnnError(f"weights of layer {bn_name!r} are missing")
            stats = _batchnorm_stats(bn, list(weights[bn_name]), params["weight"].shape[0])
            w, b = fold_batchnorm(params["weight"], params["bias"], *stats[:4], eps=stats[4])
            params = {"weight": w.astype(np.float32), "bias": b.astype(np.float32)}
        assign(layer, params)


def _network(nodes, meta):
    from minicnn.graph import Graph

    net = Graph(nodes, meta=meta)
    architecture = meta["architecture"].removesuffix("_notop")
    if architecture in CAFFE_MODELS:
        net.meta["preprocess"] = "caffe"
    if architecture.removesuffix("v2") in CAFFE_MODELS and net.shapes()[-1] == (1000,):
        from minicnn.io.imagenet import class_names

        net.meta["class_names"] = class_names()
    return net


def read_keras_graph(f, config: dict):
    """The branching Keras model in the open h5py File ``f`` (config: its model_config) as a float32
    Graph, BatchNormalization folded, weights matched by layer name."""
    nodes, meta, batchnorms, pads = build_graph(config)
    root = legacy_root(f)
    if root is None:
        raise MinicnnError("the Keras model file has no weights (expected a 'model_weights' group)")
    _load_weights(nodes, batchnorms, pads, dict(legacy_weights(root)))
    return _network(nodes, meta)


def read_keras_file(f, fmt: str):
    """The network in the open Keras HDF5 file ``f`` of loader format ``fmt`` if it branches (a
    Functional model with an Add, or weights named as keras.applications ResNet's); else None, and
    minicnn.io.keras_model / keras_weights read it."""
    if fmt == "keras-model":
        try:
            config = json.loads(attr_str(f, "model_config"))
        except (json.JSONDecodeError, TypeError):
            return None  # keras_model reports the damaged attribute
        return read_keras_graph(f, config) if isinstance(config, dict) and branches(config) else None
    weighted = keras3_weights(f) if fmt == "keras3-weights" else legacy_weights(legacy_root(f))
    return read_resnet_weights(weighted) if looks_like_resnet({n for n, _ in weighted}) else None


def read_resnet_weights(weighted: list):
    """The keras.applications ResNet (v1 or v2) that a weight-only file holds (``weighted``:
    [(layer name, stored arrays)] from minicnn.io.keras_weights), as a float32 Graph at 224 x 224;
    the depth from the blocks per stage, the top from a ``predictions`` layer."""
    weights = dict(weighted)
    blocks = blocks_per_stage(weights)
    if blocks not in DEPTHS:
        raise MinicnnError(f"ResNet weights with {blocks} blocks per stage (expected one of {list(DEPTHS)})")
    top = weights.get("predictions")
    classes = int(top[0].shape[1]) if top and len(top[0].shape) == 2 else None
    layout = resnet_v2_config if is_preactivation(weights) else resnet_config
    nodes, meta, batchnorms, pads = build_graph(layout(blocks, classes))
    _load_weights(nodes, batchnorms, pads, weights)
    return _network(nodes, meta)
