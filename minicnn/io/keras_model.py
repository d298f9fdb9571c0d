"""Keras full-model files (``model.save("x.h5")``): rebuild the chain of layers, then load weights.

The architecture is the JSON attribute ``model_config`` (Sequential or Functional, Keras 2 or 3);
the weights are in the group ``model_weights`` in the legacy layout (see minicnn.io.keras_weights)
and are matched to layers by name. Supported: a single chain of

    InputLayer, Conv2D, MaxPooling2D, Flatten, Dense, Dropout, GlobalAveragePooling2D,
    Activation / ReLU (relu, linear, and softmax at the end)

in channels-last layout, also with models nested as layers (a Keras VGG16 base inside a
Sequential, the usual fine-tuning setup), which are expanded in place. Fused activations are split
into separate ``ReLU`` layers named ``<layer>_relu`` so that the three backward rules of the engine
(gradient, DeconvNet, guided; Zeiler & Fergus 2013, Springenberg et al. 2015) see every rectifier.
A softmax at the end is recorded as ``meta["final_activation"] = "softmax"``: ``net.forward``
returns the scores before it, which is what class visualisation differentiates (Simonyan et al.
2013, sec. 2).

A Functional model with an ``Add`` (residual blocks: keras.applications.ResNet50) is read as a
Graph by minicnn.io.keras_resnet.

Keras "same" padding is asymmetric in general; it equals the engine's symmetric padding only for odd
square kernels with stride 1, so other "same" layers are refused with a clear error.
"""

from __future__ import annotations

import json

from minicnn.errors import MinicnnError
from minicnn.io.h5common import assign, attr_str
from minicnn.io.keras_weights import legacy_root, legacy_weights, params_from_keras

MODEL_CLASSES = ("Sequential", "Functional", "Model")


def _pair(value, what: str, layer: str) -> tuple[int, int]:
    """Keras int-or-pair hyper-parameter -> (a, b)."""
    v = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(v) != 2:
        raise MinicnnError(f"Keras layer {layer!r}: expected a 2-D {what}, got {value!r}")
    return int(v[0]), int(v[1])


def _same(pair, what: str, layer: str) -> int:
    if pair[0] != pair[1]:
        raise MinicnnError(f"Keras layer {layer!r}: {what} {pair} is not supported (expected equal values)")
    return pair[0]


def _input_shape(layers: list) -> tuple | None:
    """(C, H, W) from the first layer's batch shape (Keras 3 ``batch_shape``, Keras 2
    ``batch_input_shape``, or ``build_config``), channels-last (None, H, W, C) in the file."""
    for spec in layers[:2]:
        cfg = spec.get("config", {})
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        shape = shape or (spec.get("build_config") or {}).get("input_shape")
        if shape:
            if len(shape) != 4 or any(s is None for s in shape[1:]):
                raise MinicnnError(f"expected a fixed image input (None, H, W, C), the model has {shape}")
            h, w, c = shape[1:]
            return int(c), int(h), int(w)
    return None


def _activation(cfg, name: str, position: str):
    act = cfg.get("activation")
    if isinstance(act, dict):  # Keras 3 may serialise activations as objects
        act = act.get("config", {}).get("name") or act.get("class_name")
    if act not in ("relu", "softmax", "linear", None):
        raise MinicnnError(
            f"Keras layer {name!r}: activation {act!r} is not supported "
            "(expected relu, linear, or softmax at the end)"
        )
    if act == "softmax" and position != "last":
        raise MinicnnError(f"Keras layer {name!r}: softmax is only supported as the last layer")
    return act


def _is_last(layers, i) -> bool:
    """True when nothing after layer i changes the scores at inference (only Dropout/linear)."""
    for spec in layers[i + 1 :]:
        cls, cfg = spec.get("class_name"), spec.get("config", {})
        if cls == "Dropout" or (cls == "Activation" and cfg.get("activation") == "linear"):
            continue
        return False
    return True


def _convert(spec, shape, position):
    """Engine layers for one Keras layer spec, given the current input shape (no batch axis).

    Returns (layers, final_activation or None, flatten_hwc or None).
    """
    from minicnn.layers import Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D, MaxPool2D, ReLU

    cls, cfg = spec.get("class_name"), spec.get("config", {})
    name = cfg.get("name") or spec.get("name")
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise MinicnnError(f"Keras layer {name!r}: only channels_last models are supported")
    out, final, hwc = [], None, None
    act = None
    if cls == "Conv2D":
        if _pair(cfg.get("dilation_rate", 1), "dilation", name) != (1, 1) or cfg.get("groups", 1) != 1:
            raise MinicnnError(f"Keras layer {name!r}: dilated or grouped convolution unsupported")
        kh, kw = _pair(cfg["kernel_size"], "kernel size", name)
        stride = _same(_pair(cfg.get("strides", 1), "strides", name), "strides", name)
        padding = 0
        if cfg.get("padding", "valid") == "same":
            if kh != kw or kh % 2 == 0 or stride != 1:
                raise MinicnnError(
                    f"Keras layer {name!r}: padding 'same' with kernel {kh}x{kw} and stride "
                    f"{stride} is asymmetric; supported only for odd square kernels with stride 1"
                )
            padding = (kh - 1) // 2
        elif cfg.get("padding", "valid") != "valid":
            raise MinicnnError(f"Keras layer {name!r}: padding {cfg.get('padding')!r} unsupported")
        out.append(Conv2D(shape[0], int(cfg["filters"]), (kh, kw), stride, padding, name=name))
        act = _activation(cfg, name, position)
    elif cls == "MaxPooling2D":
        pool = _pair(cfg.get("pool_size", 2), "pool size", name)
        strides = _pair(cfg.get("strides") or pool, "strides", name)
        if cfg.get("padding", "valid") != "valid":
            raise MinicnnError(f"Keras layer {name!r}: only 'valid' max-pooling is supported")
        out.append(MaxPool2D(pool, _same(strides, "strides", name), name=name))
    elif cls == "Flatten":
        if len(shape) == 3:
            hwc = (shape[1], shape[2], shape[0])
        out.append(Flatten(name=name))
    elif cls == "Dense":
        if len(shape) != 1:
            raise MinicnnError(
                f"Keras layer {name!r}: Dense on a {len(shape)}-D input is unsupported "
                "(expected Flatten or GlobalAveragePooling2D before it)"
            )
        out.append(Dense(shape[0], int(cfg["units"]), name=name))
        act = _activation(cfg, name, position)
    elif cls == "Dropout":
        out.append(Dropout(float(cfg.get("rate", 0.5)), name=name))
    elif cls == "GlobalAveragePooling2D":
        if cfg.get("keepdims", False):
            raise MinicnnError(f"Keras layer {name!r}: keepdims=True is unsupported")
        out.append(GlobalAvgPool2D(name=name))
    elif cls == "Activation":
        act = _activation(cfg, name, position)
        if act == "relu":
            return [ReLU(name=name)], None, None
    elif cls == "ReLU":
        if cfg.get("max_value") is not None or cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
            raise MinicnnError(f"Keras layer {name!r}: only the plain ReLU is supported")
        return [ReLU(name=name)], None, None
    else:
        raise MinicnnError(
            f"Keras layer {name!r} of type {cls} is not supported (expected InputLayer, Conv2D, "
            "MaxPooling2D, Flatten, Dense, Dropout, GlobalAveragePooling2D, Activation)"
        )
    if act == "relu":
        out.append(ReLU(name=f"{name}_relu"))
    elif act == "softmax":
        final = "softmax"
    return out, final, hwc


def _predecessors(spec) -> list[str]:
    """Names of the layers feeding a Functional layer (Keras 2 and Keras 3 ``inbound_nodes``)."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            history = node.get("keras_history")
            if history:
                found.append(history[0])
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            # Keras 2: [name, node_index, tensor_index, kwargs]
            if len(node) >= 3 and isinstance(node[0], str) and isinstance(node[1], int):
                found.append(node[0])
                return
            for v in node:
                walk(v)

    walk(spec.get("inbound_nodes", []))
    return found


def _spec_name(spec) -> str | None:
    return (spec.get("config") or {}).get("name") or spec.get("name")


def _chain(config: dict):
    """(model config, flat list of layer specs, names of nested models) for a chain of layers.

    Models nested as layers (a Keras VGG16 base inside a Sequential) are expanded in place;
    Functional models must be a single chain, each layer fed by the one before it.
    """
    cls = config.get("class_name")
    if cls not in MODEL_CLASSES:
        raise MinicnnError(f"Keras model class {cls!r} is not supported (expected Sequential)")
    inner = config.get("config", {})
    if isinstance(inner, list):  # Keras <= 2.2 stored a Sequential's config as the bare layer list
        inner = {"layers": inner}
    specs = inner.get("layers", [])
    if cls != "Sequential":
        for prev, spec in zip(specs, specs[1:], strict=False):
            preds = _predecessors(spec)
            if preds and preds != [_spec_name(prev)]:
                raise MinicnnError(
                    f"Keras layer {_spec_name(spec)!r}: the model is not a single chain (inputs {preds})"
                )
    flat, nested = [], []
    for spec in specs:
        if spec.get("class_name") in MODEL_CLASSES:
            _, inner_specs, inner_nested = _chain(spec)
            flat += inner_specs
            nested += [_spec_name(spec), *inner_nested]
        else:
            flat.append(spec)
    return inner, flat, nested


def build_from_config(config: dict):
    """(layers, meta, flatten_hwc, nested) from a Keras ``model_config`` dict.

    flatten_hwc maps the name of each Dense layer that follows a Flatten of a feature map to that
    map's (H, W, C), for reordering its weights; nested lists the models nested as layers, whose
    weights Keras stores in one group each. MinicnnError on anything minicnn does not support.
    """
    inner, specs, nested = _chain(config)
    shape = _input_shape(specs)
    if shape is None:
        raise MinicnnError("the Keras model has no input shape (expected an InputLayer)")
    input_shape, layers, final, hwc, flatten_hwc = list(shape), [], None, None, {}
    specs = [s for s in specs if s.get("class_name") != "InputLayer"]
    for i, spec in enumerate(specs):
        position = "last" if _is_last(specs, i) else "inner"
        new, act, flat = _convert(spec, shape, position)
        final = act or final
        for layer in new:
            try:
                shape = layer.output_shape(shape)
            except MinicnnError as exc:
                raise MinicnnError(f"Keras layer {layer.name!r}: {exc}") from None
            if layer.is_linear and hwc is not None:
                flatten_hwc[layer.name], hwc = hwc, None
        hwc = flat or hwc
        layers += new
    meta = {"input_shape": input_shape, "architecture": inner.get("name", "keras")}
    meta["final_activation"] = final
    return layers, meta, flatten_hwc, nested


def read_keras_model(f):
    """Rebuild the Keras model stored in the open h5py File ``f`` as a float32 Sequential.

    Weights come from ``model_weights`` by layer name: conv kernels HWIO -> OIHW, dense kernels
    (in, out) -> (out, in), the first Dense after a Flatten reordered from Keras's (H, W, C)
    flatten order to (C, H, W). A model named vgg16/vgg19 gets caffe preprocessing and, with 1000
    outputs, the ImageNet class names.
    """
    from minicnn.network import Sequential

    try:
        config = json.loads(attr_str(f, "model_config"))
    except (json.JSONDecodeError, TypeError) as exc:
        raise MinicnnError(f"damaged 'model_config' attribute ({exc})") from None
    layers, meta, flatten_hwc, nested = build_from_config(config)
    root = legacy_root(f)
    if root is None:
        raise MinicnnError("the Keras model file has no weights (expected a 'model_weights' group)")
    weights = dict(legacy_weights(root, nested=set(nested)))
    for layer in layers:
        if not layer.has_params:
            continue
        if layer.name not in weights:
            raise MinicnnError(f"weights of layer {layer.name!r} are missing from model_weights")
        arrays = list(weights[layer.name])  # [kernel] alone when use_bias=False
        assign(layer, params_from_keras(layer, arrays, flatten_hwc.get(layer.name)))
    net = Sequential(layers, meta=meta)
    if meta["architecture"] in ("vgg16", "vgg19"):
        from minicnn.io.imagenet import class_names

        net.meta["preprocess"] = "caffe"
        if net.shapes()[-1] == (1000,):
            net.meta["class_names"] = class_names()
    return net
