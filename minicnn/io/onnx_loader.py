"""ONNX graphs of VGG-style chains and ResNet-style graphs (residual Adds), read with ``onnx``.

``pip install "minicnn-vis[onnx]"`` installs it. Supported operators (ONNX operator docs, opset 7+),
each mapped to one minicnn layer:

    Conv (group 1, no dilation, symmetric padding)        Conv2D, weight OIHW as stored
    BatchNormalization (after a Conv read by it alone)    folded into that Conv (inference only,
                                                          minicnn/io/fold_batchnorm.py, the node's eps)
    Relu                                                  ReLU
    MaxPool (floor mode; symmetric pads <= kernel / 2)    MaxPool2D(padding=p) (-inf padding)
    AveragePool (floor mode; count_include_pad as set)    AvgPool2D
    GlobalAveragePool                                     GlobalAvgPool2D (the (N, C, 1, 1) output is
                                                          (N, C) in minicnn; the Flatten after it is
                                                          then a no-op)
    Flatten (axis 1) / Reshape to (N, -1)                 Flatten ((C, H, W) order in both)
    Gemm (alpha, beta, transB) / MatMul then Add          Dense, weight (out, in)
    Dropout                                               Dropout (the identity at inference)
    Softmax (last node only)                              dropped: minicnn's outputs are the scores
                                                          before softmax; meta["final_activation"]
    Add of two computed tensors                           Add (a residual block's sum: the network is
                                                          then a minicnn Graph)
    Constant / Identity                                   constants for the operators above / nothing

Each node's first input is a tensor computed from the image; its other inputs are initializers or
Constants, except Add, which may sum two computed tensors. The nodes are put in dependency order
(a node reading a tensor no node, initializer or input provides, or a cycle, is refused naming the
node); a network where every layer reads the one before it is a Sequential, one that branches (a
tensor read by two nodes, then added) a Graph. A BatchNormalization folds into the Conv before it
only when nothing else reads that Conv's output. Anything else is refused with one line naming the
operator and the node.

Nothing outside the named file is read. An ONNX tensor may keep its bytes in another file ("external
data", a location relative to the model), and ``onnx.numpy_helper.to_array`` reads that file from
the current directory; tensors sit in initializers, Constant nodes, any node's tensor attributes,
sparse tensors, subgraphs (If, Loop, Scan bodies), functions and training information. So before
anything is converted, ``refuse_external_data`` walks every message of the model (by its protobuf
descriptor, so a field added to ONNX later is walked too) and refuses the file if any tensor names
external data.
The graph does not say how its images were preprocessed; meta["preprocess"] is "torch" (the
convention of torch.onnx exports of torchvision models); set ``net.meta["preprocess"]`` otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minicnn.errors import MinicnnError, install_hint, quote
from minicnn.io.fold_batchnorm import fold_batchnorm
from minicnn.io.h5common import assign
from minicnn.io.imagenet import class_names as imagenet_class_names
from minicnn.record import INPUT

SUPPORTED = (
    "Conv, BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, "
    "Gemm, MatMul, Add, Dropout, Softmax"
)


def _import_onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise MinicnnError(f"reading ONNX files needs the onnx package: {install_hint('onnx')}") from None
    return onnx, numpy_helper


class _Graph:
    """The model's constants and the attribute reader, with node-naming errors."""

    def __init__(self, graph, numpy_helper, onnx):
        self.onnx = onnx
        self.helper = numpy_helper
        self.inits = {t.name: t for t in graph.initializer}
        self.constants: dict[str, np.ndarray] = {}

    def const(self, node, i: int, what: str) -> np.ndarray:
        name = node.input[i] if i < len(node.input) else ""
        if name in self.constants:
            return self.constants[name]
        if name not in self.inits:
            raise MinicnnError(f"{_where(node)}: input {i} ({what}) must be a constant initializer")
        return self.helper.to_array(self.inits[name])

    def has(self, node, i: int) -> bool:
        return i < len(node.input) and node.input[i] != ""

    def attrs(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}


def refuse_external_data(model, onnx) -> None:
    """MinicnnError if any TensorProto anywhere in the ModelProto ``model`` keeps its bytes in another
    file (``data_location`` EXTERNAL or ``external_data`` entries). Walks every message-typed field of
    every message, depth first; reads no tensor bytes (scalar and bytes fields are not visited)."""
    from google.protobuf.descriptor import FieldDescriptor

    tensor = onnx.TensorProto.DESCRIPTOR.full_name
    stack = [(model, "model")]
    while stack:
        message, where = stack.pop()
        if message.DESCRIPTOR.full_name == tensor and (
            message.data_location == onnx.TensorProto.EXTERNAL or len(message.external_data) > 0
        ):
            location = next((e.value for e in message.external_data if e.key == "location"), "")
            raise MinicnnError(
                f"tensor {quote(message.name, 60)} ({where}) is stored in an external file "
                f"{quote(location, 60)}; refused (nothing outside the named file is read)"
            )
        for field in message.DESCRIPTOR.fields:
            if field.type != FieldDescriptor.TYPE_MESSAGE:
                continue
            value = getattr(message, field.name)
            # protobuf 5.28 added ``is_repeated`` and 7 removed ``label``
            repeated = (
                field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
            )
            if repeated:
                stack.extend((item, f"{where}.{field.name}[{i}]") for i, item in enumerate(value))
            elif message.HasField(field.name):
                stack.append((value, f"{where}.{field.name}"))


def _where(node) -> str:
    return f"node {quote(node.name or '(unnamed)', 60)} ({quote(node.op_type, 40)[1:-1]})"


def _pair(node, values, what) -> tuple[int, int]:
    values = [int(v) for v in values]
    if len(values) != 2:
        raise MinicnnError(f"{_where(node)}: expected 2-D {what}, got {values}")
    return values[0], values[1]


def _padding(node, attrs) -> tuple[int, int]:
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise MinicnnError(f"{_where(node)}: auto_pad is not supported (expected explicit pads)")
    pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
    if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
        raise MinicnnError(f"{_where(node)}: only symmetric padding is supported, got pads {pads}")
    return pads[0], pads[1]


def _input_shape(graph, inits) -> list | None:
    data = [i for i in graph.input if i.name not in inits]
    if len(data) != 1:
        raise MinicnnError(f"expected one data input, found {len(data)}")
    dims = data[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(shape) != 4:
        raise MinicnnError(f"expected an (N, C, H, W) image input, found {len(shape)} dimensions")
    return data[0].name, shape[1:]


def _order(nodes, known: set) -> list:
    """The nodes ordered so that each comes after the nodes whose outputs it reads (the file's order
    kept where possible). ``known``: tensor names that need no node (the data input, initializers,
    Constant outputs). MinicnnError naming the node for an input nobody produces or a cycle."""
    for k, node in enumerate(nodes):
        # protobuf hands back bytes for a string field that is not valid UTF-8 (a damaged file)
        if not all(isinstance(t, str) for t in (node.name, node.op_type, *node.input, *node.output)):
            raise MinicnnError(f"node {k}: a name or input that is not UTF-8 text (a damaged file)")
    producer = {out: node for node in nodes for out in node.output if out}
    for node in nodes:
        for name in node.input:
            if name and name not in known and name not in producer:
                raise MinicnnError(
                    f"{_where(node)}: input {quote(name, 60)} is not produced by any node, initializer "
                    f"or the graph's input (a dangling input)"
                )
    ready_names, order, pending = set(known), [], list(nodes)
    while pending:
        k = next((i for i, n in enumerate(pending) if all(not x or x in ready_names for x in n.input)), None)
        if k is None:  # every pending node waits on another pending node: a cycle
            raise MinicnnError(f"{_where(pending[0])}: the graph has a cycle through this node")
        node = pending.pop(k)
        order.append(node)
        ready_names.update(o for o in node.output if o)
    return order


def read_onnx(path):
    """Load an ONNX graph file as a float32 Sequential, or a Graph where it branches (Add of two
    tensors: residual blocks); see the module docstring for what is read.

    meta: architecture "onnx", input_shape from the graph's input (C, H, W) when fixed, preprocess
    "torch", class_names for 1000 outputs, final_activation "softmax" when the graph ended in one.
    """
    onnx, numpy_helper = _import_onnx()
    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and friends from protobuf
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MinicnnError(f"not a readable ONNX model, truncated or damaged ({text[:160]})") from None
    refuse_external_data(model, onnx)
    g = _Graph(model.graph, numpy_helper, onnx)
    data, chw = _input_shape(model.graph, g.inits)
    meta = {"architecture": "onnx", "preprocess": "torch", "source": "onnx"}
    layers, reads, params = [], [], {}
    computing = []
    for node in model.graph.node:
        if not node.output:  # each node is followed by its first output, a Constant's included
            raise MinicnnError(f"{_where(node)}: a node without an output")
        if node.op_type == "Constant":
            g.constants[node.output[0]] = numpy_helper.to_array(g.attrs(node)["value"])
        else:
            computing.append(node)
    nodes = _order(computing, {data, *g.inits, *g.constants})
    readers: dict[str, int] = {}  # tensor name -> how many nodes read it
    for node in nodes:
        for name in set(node.input):
            readers[name] = readers.get(name, 0) + 1
    outputs = [o.name for o in model.graph.output]
    # source: ONNX tensor name -> the minicnn node that computes it (INPUT for the data input);
    # a node that becomes no layer (a folded BatchNormalization, Identity) passes its input's on
    source = {data: INPUT}
    shapes = {INPUT: list(chw)}  # (C, H, W) or (F,) of each minicnn node's output; None where unknown
    by_name = {}
    for k, node in enumerate(nodes):
        op, attrs = node.op_type, g.attrs(node)
        if not node.input or node.input[0] not in source:
            raise MinicnnError(f"{_where(node)}: its first input must be a tensor computed from the image")
        prev = source[node.input[0]]
        name = node.name or f"{op.lower()}_{k}"
        if name in by_name or name == INPUT:
            name = f"{name}_{k}"
        try:
            if op == "Add" and len(node.input) == 2 and node.input[1] in source:
                layer, inputs = _add(node, name, source, shapes), tuple(source[i] for i in node.input)
            else:
                producer = by_name.get(prev)
                if op in ("BatchNormalization", "Add") and readers.get(node.input[0], 0) != 1:
                    producer = None  # folding into a layer whose output something else reads too
                layer = _layer(g, node, op, attrs, name, shapes[prev], producer, params, nodes[k + 1 :], meta)
                inputs = prev
        except MinicnnError:
            raise
        except Exception as exc:  # a damaged node: missing attribute, wrong type, bad shapes
            text = str(exc).splitlines()[0][:120] if str(exc) else ""
            raise MinicnnError(f"{_where(node)}: malformed node ({type(exc).__name__}: {text})") from None
        if layer is None:
            source[node.output[0]] = prev
            continue
        layers.append(layer)
        reads.append(inputs)
        by_name[name] = layer
        source[node.output[0]] = name
        given = shapes[inputs] if isinstance(inputs, str) else [shapes[i] for i in inputs]
        shapes[name] = _next_shape(layer, given)
    if not layers:
        raise MinicnnError("the graph has no layers")
    last = layers[-1].name
    if len(outputs) != 1 or source.get(outputs[0]) != last:
        raise MinicnnError(f"the graph's output {quote(outputs)} is not its last node ({quote(last, 60)})")
    for layer in layers:
        if layer.has_params:
            assign(layer, params[layer.name])
    if all(s is not None for s in chw):
        meta["input_shape"] = [int(s) for s in chw]
    shape = shapes[last]
    if shape and len(shape) == 1 and shape[0] == 1000:
        meta["class_names"] = imagenet_class_names()
    chain = [INPUT] + [layer.name for layer in layers[:-1]]
    if all(r == before for r, before in zip(reads, chain)):
        from minicnn.network import Sequential

        return Sequential(layers, meta=meta)
    from minicnn.graph import Graph

    return Graph(list(zip(layers, reads)), meta=meta)


def _add(node, name, source, shapes):
    """An Add of two computed tensors (a residual block's sum): a minicnn Add layer."""
    from minicnn import layers as L

    known = [shapes[source[i]] for i in node.input]
    if all(s is not None and all(d is not None for d in s) for s in known) and known[0] != known[1]:
        raise MinicnnError(f"{_where(node)}: inputs of shapes {known[0]} and {known[1]} do not add")
    return L.Add(name=name)


def _next_shape(layer, shape):
    """The output shape for the input shape (a list of shapes for a layer with several inputs)."""
    shapes = shape if layer.several_inputs else [shape]
    if any(s is None or any(d is None for d in s) for s in shapes):
        return None
    if layer.several_inputs:
        return list(layer.output_shape([tuple(s) for s in shapes]))
    return list(layer.output_shape(tuple(shape)))


def _layer(g, node, op, attrs, name, shape, prev, params, rest, meta):
    """The minicnn layer for one ONNX node (None where it folds into ``prev``, the layer computing its
    input when nothing else reads that output, or is a no-op)."""
    from minicnn import layers as L

    if op in ("Relu",):
        return L.ReLU(name=name)
    if op == "Identity":
        return None
    if op == "Dropout":
        return L.Dropout(0.5, name=name)
    if op == "Conv":
        w = g.const(node, 1, "weight")
        b = g.const(node, 2, "bias") if g.has(node, 2) else np.zeros(w.shape[0], w.dtype)
        if attrs.get("group", 1) != 1 or any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise MinicnnError(f"{_where(node)}: grouped or dilated convolution is not supported")
        if w.ndim != 4:
            raise MinicnnError(f"{_where(node)}: expected a 2-D convolution, weight shape {w.shape}")
        kernel = _pair(node, attrs.get("kernel_shape", w.shape[2:]), "kernel")
        sh, sw = _pair(node, attrs.get("strides", [1, 1]), "strides")
        ph, pw = _padding(node, attrs)
        if sh != sw or ph != pw:
            raise MinicnnError(f"{_where(node)}: different strides or pads along H and W are not supported")
        if tuple(kernel) != tuple(w.shape[2:]):
            raise MinicnnError(f"{_where(node)}: kernel_shape {kernel} disagrees with weight {w.shape}")
        params[name] = {"weight": w, "bias": b}
        return L.Conv2D(w.shape[1], w.shape[0], kernel, stride=sh, padding=ph, name=name)
    if op == "BatchNormalization":
        if prev is None or not prev.is_convolution:
            raise MinicnnError(
                f"{_where(node)}: BatchNormalization is supported right after a Conv that nothing else reads"
            )
        stats = [g.const(node, i, what) for i, what in enumerate(("scale", "B", "mean", "var"), start=1)]
        p = params[prev.name]
        w, b = fold_batchnorm(p["weight"], p["bias"], *stats, eps=float(attrs.get("epsilon", 1e-5)))
        params[prev.name] = {"weight": w, "bias": b}
        return None
    if op in ("MaxPool", "AveragePool"):
        if attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise MinicnnError(f"{_where(node)}: ceil_mode and dilations are not supported")
        kernel = _pair(node, attrs["kernel_shape"], "kernel")
        stride = _pair(node, attrs.get("strides", [1, 1]), "strides")
        pad = _padding(node, attrs)
        if op == "MaxPool":
            if pad[0] != pad[1] or stride[0] != stride[1] or attrs.get("storage_order", 0):
                raise MinicnnError(
                    f"{_where(node)}: max-pooling with unequal strides or pads along H and W is not supported"
                )
            if 2 * pad[0] > min(kernel):
                raise MinicnnError(f"{_where(node)}: max-pooling padding {pad[0]} exceeds half the kernel")
            return L.MaxPool2D(kernel, stride[0], padding=pad[0], name=name)
        return L.AvgPool2D(
            kernel, stride, pad, count_include_pad=bool(attrs.get("count_include_pad", 0)), name=name
        )
    if op == "GlobalAveragePool":
        return L.GlobalAvgPool2D(name=name)
    if op in ("Flatten", "Reshape"):
        if op == "Flatten" and attrs.get("axis", 1) != 1:
            raise MinicnnError(f"{_where(node)}: only Flatten with axis 1 is supported")
        if op == "Reshape":
            target = [int(v) for v in g.const(node, 1, "shape").ravel()]
            flat = None if shape is None else int(np.prod(shape))
            if len(target) != 2 or target[1] not in (-1, flat) or target[0] not in (-1, 0, 1):
                raise MinicnnError(f"{_where(node)}: only a reshape to (N, -1) is supported, got {target}")
        if shape is not None and len(shape) == 1:
            return None  # already (N, F): after GlobalAveragePool
        return L.Flatten(name=name)
    if op in ("Gemm", "MatMul"):
        w = g.const(node, 1, "weight")
        if w.ndim != 2:
            raise MinicnnError(f"{_where(node)}: expected a 2-D weight, found shape {w.shape}")
        if op == "Gemm":
            if attrs.get("transA", 0):
                raise MinicnnError(f"{_where(node)}: transA is not supported")
            w = w if attrs.get("transB", 0) else w.T
            b = g.const(node, 2, "bias") if g.has(node, 2) else np.zeros(w.shape[0], w.dtype)
            w, b = w * attrs.get("alpha", 1.0), np.broadcast_to(b * attrs.get("beta", 1.0), (w.shape[0],))
        else:
            w, b = w.T, np.zeros(w.shape[1], w.dtype)
        params[name] = {"weight": np.ascontiguousarray(w), "bias": np.array(b)}
        return L.Dense(w.shape[1], w.shape[0], name=name)
    if op == "Add":
        if prev is None or not prev.is_linear or params[prev.name]["bias"].any():
            raise MinicnnError(f"{_where(node)}: Add is supported only as the bias of a MatMul")
        b = g.const(node, 1, "bias").ravel()
        if b.shape != params[prev.name]["bias"].shape:
            raise MinicnnError(f"{_where(node)}: bias shape {b.shape} does not match the MatMul's outputs")
        params[prev.name]["bias"] = b
        return None
    if op == "Softmax":
        if rest:
            raise MinicnnError(f"{_where(node)}: Softmax is supported only as the last node")
        meta["final_activation"] = "softmax"
        return None
    raise MinicnnError(
        f"{_where(node)}: operator {quote(op, 40)[1:-1]} is not supported (supported: {SUPPORTED})"
    )
