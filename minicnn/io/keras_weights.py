"""Keras weight files of VGG16/VGG19 (Simonyan & Zisserman 2014, table 1, configurations D and E).

Three layouts are found in the wild:

    Keras 2 (the downloadable ``vgg16_weights_tf_dim_ordering_tf_kernels[_notop].h5``):
        root attr ``layer_names`` (split into ``layer_names0``, ``layer_names1``, ... when long),
        one group per layer with attr ``weight_names``, datasets such as ``block1_conv1_W_1:0``.
    Keras 3 legacy ``.h5``: the same attributes, datasets at ``block1_conv1/block1_conv1/kernel``;
        under a root group ``model_weights`` when the file was written by ``model.save``.
    Keras 3 ``.weights.h5``: ``layers/conv2d``, ``layers/conv2d_1``, ... each with ``vars/0``
        (kernel) and ``vars/1`` (bias); the suffix is the creation order (numeric, not
        lexicographic).

As Keras does, weights are matched to the network by order among the layers that have weights. The
number of convolutions tells VGG16 (13) from VGG19 (16); dense layers (3 or none) tell top from
notop. Weights whose layer names are keras.applications ResNet's (conv1_conv, conv2_block1_0_conv, ...)
are read by minicnn.io.keras_resnet instead, by name (minicnn.io.loader sends them there).

Layout conversions (engine conventions: OIHW, dense (out, in), flatten in (C, H, W) order):

    conv kernel  Keras (kh, kw, in, out)  -> transpose (3, 2, 0, 1) -> (out, in, kh, kw)
    dense kernel Keras (in, out)          -> transpose               -> (out, in)
    fc1 rows     Keras flattens (H, W, C) -> reorder to (C, H, W) before transposing
"""

from __future__ import annotations

import re

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.io.h5check import read_array
from minicnn.io.h5common import assign, attr_list, attr_str
from minicnn.io.imagenet import class_names as imagenet_class_names

_VGG_CONVS = {13: "vgg16", 16: "vgg19"}


# -- layout detection ---------------------------------------------------------------------------
def legacy_root(f):
    """The group holding ``layer_names`` (the root, or ``model_weights``), or None."""
    for group in (f, f.get("model_weights")):
        if group is not None and attr_list(group, "layer_names") is not None:
            return group
    return None


def detect_layout(f) -> str | None:
    """ "keras2-weights", "keras3-legacy-weights", "keras3-weights" or None for the open File."""
    root = legacy_root(f)
    if root is not None:
        version = attr_str(root, "keras_version") or attr_str(f, "keras_version") or ""
        return "keras3-legacy-weights" if version.startswith("3") else "keras2-weights"
    import h5py

    # only groups are asked for "vars": ``"vars" in dataset`` would iterate the dataset's rows
    layers = f.get("layers")
    if isinstance(layers, h5py.Group) and any(
        isinstance(g, h5py.Group) and "vars" in g for g in layers.values()
    ):
        return "keras3-weights"
    return None


# -- reading raw arrays -------------------------------------------------------------------------
def _datasets(group) -> list:
    """All datasets below ``group`` in visiting order (fallback when ``weight_names`` is absent)."""
    found = []
    group.visititems(lambda _, obj: found.append(obj) if hasattr(obj, "shape") else None)
    return found


def _split_nested(group_name: str, names: list[str], arrays: list) -> list[tuple[str, list]]:
    """Weights of a nested model, one group for all its layers -> [(layer name, arrays)].

    The layer is the path component before the variable name: ``vgg16/block1_conv1/kernel`` or
    ``block1_conv1/kernel:0`` belong to ``block1_conv1``.
    """
    out: dict[str, list] = {}
    for name, array in zip(names, arrays, strict=True):
        parts = name.split("/")
        out.setdefault(parts[-2] if len(parts) > 1 else group_name, []).append(array)
    return list(out.items())


def legacy_weights(root, nested=()) -> list[tuple[str, list]]:
    """[(layer name, [kernel, bias, ...])] for every layer with weights, in ``layer_names`` order.

    The weights are h5py Datasets, not yet read: ``params_from_keras`` reads each one only after
    checking its declared shape against the layer it is assigned to (minicnn.io.h5check).

    root: a group with ``layer_names`` (Keras 2 or Keras 3 legacy layout). Arrays come in the
    order of each layer's ``weight_names`` attribute. nested: names of groups that hold a whole
    nested model (a Keras VGG16 base inside a Sequential); their weights are split per layer.
    """
    out = []
    for name in attr_list(root, "layer_names"):
        group = root.get(name)
        if group is None or not hasattr(group, "keys"):
            raise MinicnnError(f"layer {name!r} is listed in layer_names but has no group")
        names = attr_list(group, "weight_names")
        if names is None:
            arrays = _datasets(group)
            arrays.sort(key=lambda a: -a.ndim)  # kernel before bias
        else:
            missing = [n for n in names if n not in group]
            if missing:
                raise MinicnnError(f"layer {name!r}: weight {missing[0]!r} is missing")
            arrays = [group[n] for n in names]
            if not all(hasattr(a, "ndim") for a in arrays):
                raise MinicnnError(f"layer {name!r}: a weight name points to a group, not a dataset")
            if name in nested:
                out += _split_nested(name, names, arrays)
                continue
        if arrays:
            out.append((name, arrays))
    return out


def _suffix_key(name: str):
    """``conv2d_10`` -> ("conv2d", 10); ``conv2d`` -> ("conv2d", 0): Keras's creation order."""
    m = re.fullmatch(r"(.*?)(?:_(\d+))?", name)
    return m.group(1), int(m.group(2) or 0)


def keras3_weights(f) -> list[tuple[str, list]]:
    """[(layer name, [vars/0, vars/1, ...])] of a Keras 3 ``.weights.h5`` file, layers with vars.

    The vars are h5py Datasets, not yet read (see ``legacy_weights``).

    Layers are ordered convolutions first, then dense layers (the only order a VGG has), each by
    the numeric suffix of its group name; the reported name is the ``vars`` group's ``name``
    attribute when present (the Keras layer name, e.g. ``block1_conv1``).
    """
    layers = []
    for key, group in f["layers"].items():
        vars_ = group.get("vars") if hasattr(group, "keys") else None
        if vars_ is None or not hasattr(vars_, "keys") or len(vars_) == 0:
            continue
        if not all(k.isdigit() for k in vars_):
            raise MinicnnError(f"layer {key!r}: vars should be numbered 0, 1, ..., found {sorted(vars_)[:4]}")
        arrays = [vars_[k] for k in sorted(vars_, key=int)]
        if not all(hasattr(a, "ndim") for a in arrays):
            raise MinicnnError(f"layer {key!r}: expected datasets in vars")
        name = attr_str(vars_, "name") or key
        layers.append((-arrays[0].ndim, _suffix_key(key), name, arrays))
    layers.sort(key=lambda t: t[:2])
    return [(name, arrays) for _, _, name, arrays in layers]


# -- conversions --------------------------------------------------------------------------------
def conv_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras conv kernel (kh, kw, in, out) -> engine (out, in, kh, kw)."""
    if kernel.ndim != 4:
        raise MinicnnError(f"expected a 4-D convolution kernel, found shape {kernel.shape}")
    return kernel.transpose(3, 2, 0, 1)


def transpose2d(a: np.ndarray, block: int = 512) -> np.ndarray:
    """A C-contiguous copy of ``a.T`` for a 2-D array, copied in block x block tiles.

    ``np.ascontiguousarray(a.T)`` walks one side with a stride of a whole row and misses the cache
    on almost every element; VGG's fc1 (25088 x 4096) takes seconds that way. Tiles that fit in
    the cache make the copy several times faster.
    """
    n, m = a.shape
    out = np.empty((m, n), dtype=a.dtype)
    for i in range(0, n, block):
        for j in range(0, m, block):
            out[j : j + block, i : i + block] = a[i : i + block, j : j + block].T
    return out


def dense_kernel(kernel: np.ndarray, hwc=None) -> np.ndarray:
    """Keras dense kernel (in, out) -> engine (out, in).

    hwc: (H, W, C) of the feature map that a Flatten turned into this layer's input. Keras flattens
    channels-last maps in (H, W, C) order and the engine in (C, H, W) order, so the rows are
    reordered: row h*W*C + w*C + c moves to c*H*W + h*W + w.
    """
    if kernel.ndim != 2:
        raise MinicnnError(f"expected a 2-D dense kernel, found shape {kernel.shape}")
    if hwc is not None:
        h, w, c = hwc
        if h * w * c != kernel.shape[0]:
            raise MinicnnError(
                f"dense kernel has {kernel.shape[0]} inputs, expected {h}*{w}*{c} = {h * w * c}"
            )
        # engine input index c*H*W + h*W + w reads Keras row h*W*C + w*C + c (a row gather)
        kernel = kernel[np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel()]
    return transpose2d(kernel)


def keras_shapes(layer) -> tuple[tuple, tuple]:
    """(kernel, bias) shapes that Keras stores for ``layer``: conv (kh, kw, in, out), dense (in, out)."""
    shapes = layer.param_shapes()
    w = tuple(shapes["weight"])
    kernel = (w[2], w[3], w[1], w[0]) if layer.is_convolution else (w[1], w[0])
    return kernel, tuple(shapes["bias"])


def params_from_keras(layer, arrays, hwc=None, source: str = "") -> dict:
    """Engine parameters for ``layer`` (Conv2D or Dense) from Keras weights [kernel, bias].

    arrays: h5py Datasets (or arrays); each is read only after its declared shape and dtype match
    what ``layer`` needs (minicnn.io.h5check.read_array). A missing bias (``[kernel]``, Keras
    ``use_bias=False``) is zeros.
    """
    where = f"layer {layer.name!r}" + (f" (file layer {source!r})" if source != layer.name else "")
    if len(arrays) not in (1, 2):
        raise MinicnnError(f"{where}: expected 2 weights (kernel, bias), found {len(arrays)}")
    kernel_shape, bias_shape = keras_shapes(layer)
    found = tuple(arrays[0].shape)
    if found != kernel_shape:
        # said in the engine's layout (as every other shape message), before anything is read
        engine = layer.param_shapes()["weight"]
        if len(found) == 4 and layer.is_convolution:
            found = (found[3], found[2], found[0], found[1])
        elif len(found) == 2 and not layer.is_convolution:
            found = (found[1], found[0])
        raise MinicnnError(f"{where}: weight should have shape {tuple(engine)}, found {found}")
    kernel = read_array(arrays[0], kernel_shape, f"{where}: kernel")
    if len(arrays) == 2:
        bias = read_array(arrays[1], bias_shape, f"{where}: bias")
    else:
        bias = np.zeros(bias_shape, kernel.dtype)
    try:
        w = conv_kernel(kernel) if layer.is_convolution else dense_kernel(kernel, hwc)
    except MinicnnError as exc:
        raise MinicnnError(f"{where}: {exc}") from None
    return {"weight": w, "bias": bias}


# -- VGG ----------------------------------------------------------------------------------------
def read_keras_weights(f, layout: str):
    """Build the VGG16/VGG19 (top or notop) that the weight file ``f`` holds, weights loaded.

    layout: as returned by ``detect_layout``. Returns a float32 Sequential from minicnn.zoo with
    meta: architecture, input_shape [3, 224, 224], preprocess "caffe", class_names (the 1000
    ImageNet names when the top has 1000 outputs). MinicnnError when the weights are not a VGG.
    """
    from minicnn import zoo
    from minicnn.network import Sequential

    if layout == "keras3-weights":
        weighted = keras3_weights(f)
    else:
        weighted = legacy_weights(legacy_root(f))
    convs = [(n, a) for n, a in weighted if a[0].ndim == 4]
    denses = [(n, a) for n, a in weighted if a[0].ndim == 2]
    ordered = [a[0].ndim for _, a in weighted] == [4] * len(convs) + [2] * len(denses)
    if len(convs) not in _VGG_CONVS or len(denses) not in (0, 3) or not ordered:
        raise MinicnnError(
            "weights do not look like Keras VGG16/VGG19: expected 13 or 16 convolution layers, "
            f"then 3 dense layers or none; found {len(convs)} convolution and {len(denses)} dense"
        )
    name = _VGG_CONVS[len(convs)]
    top = bool(denses)
    num_classes = int(denses[-1][1][0].shape[1]) if top else 1000
    layers, meta = zoo.vgg_layers(name, include_top=top, num_classes=num_classes)
    targets = [layer for layer in layers if layer.has_params]
    for layer, (source, arrays) in zip(targets, convs + denses, strict=True):
        hwc = (7, 7, 512) if layer.name == "fc1" else None
        assign(layer, params_from_keras(layer, arrays, hwc, source))
    if top and num_classes == 1000:
        meta["class_names"] = imagenet_class_names()
    return Sequential(layers, meta=meta)
