"""torchvision's VGG (and timm's) from the names and shapes of a state dict, before any weight is read.

torchvision.models.vgg (Simonyan & Zisserman 2014, table 1; the ``_bn`` variants add BatchNorm after
every convolution) names its modules by position in two nn.Sequential blocks:

    features.N     Conv2d(3x3, padding 1) [BatchNorm2d] ReLU ... MaxPool2d(2, 2), N counts every
                   module, so a convolution at N is followed by ReLU at N+1 (BatchNorm at N+1 and
                   ReLU at N+2 in ``_bn`` models), and an index with no parameters between two
                   convolutions is a max-pool. ``features`` always ends in a max-pool.
    avgpool        AdaptiveAvgPool2d((s, s)) (s = 7), no parameters: s comes from classifier.0's
                   input width, C * s * s
    classifier.N   Linear(C*s*s, 4096) ReLU Dropout Linear(4096, 4096) ReLU Dropout Linear(4096, K):
                   the linear layers sit at 0, 3, 6. classifier.0 reads the pooled map flattened
                   in (C, H, W) order, minicnn's own Flatten order (Keras's is (H, W, C)).

timm's ``vgg*`` (``vgg16.tv_in1k``) keeps ``features`` and replaces the classifier by
``pre_logits.fc1`` (a 7x7 convolution, 512 -> 4096, no padding), ``pre_logits.fc2`` (1x1, 4096 ->
4096), each followed by ReLU and Dropout, and ``head.fc`` (Linear 4096 -> K) after a global average
pool; at 224 x 224 input this is the same function as torchvision's classifier.

Torch weights are already in minicnn's layouts (convolutions OIHW, linear (out, in)), so nothing is
transposed. BatchNorm is folded into its convolution (minicnn/io/fold_batchnorm.py, eps = 1e-5,
torch's default, which a state dict does not store): the network is for inference.
Layer names are the torch module paths (``features.28``, ``classifier.6``), so a Captum user's
``model.features[28]`` is minicnn's ``--layer features.28``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np

from minicnn.errors import MinicnnError, quote
from minicnn.io.fold_batchnorm import fold_batchnorm
from minicnn.io.h5common import assign
from minicnn.io.imagenet import class_names as imagenet_class_names

# torchvision's configurations (vgg.py "cfgs"): widths, "M" for a max-pool
CONFIGS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"),
}  # fmt: skip

# ASCII digits only, at most 6 (str.isdigit and int() also take other scripts' digits and
# thousands of them, which int() refuses to convert)
_FEATURE = re.compile(
    r"features\.(\d{1,6})\.(weight|bias|running_mean|running_var|num_batches_tracked)", re.ASCII
)
_CLASSIFIER = re.compile(r"classifier\.(\d{1,6})\.(weight|bias)", re.ASCII)
_TIMM = ("pre_logits.fc1", "pre_logits.fc2", "head.fc")
EXPECTED = (
    "torchvision VGG keys features.N.{weight,bias[,running_mean,running_var,num_batches_tracked]} and "
    "classifier.{0,3,6}.{weight,bias}, or timm's pre_logits.fc1/fc2 and head.fc"
)


def looks_like_vgg(names) -> bool:
    """True when the state dict's keys are a torchvision or timm VGG's (used to pick a reader)."""
    return any(_FEATURE.fullmatch(n) for n in names)


class _Plan:
    """The layers to build, in order, with the tensors each one takes from the file."""

    def __init__(self):
        self.layers = []  # Layer objects without parameters
        self.sources = []  # per layer: None, ("conv", prefix, bn prefix or None), ("dense", key prefix)

    def add(self, layer, source=None):
        self.layers.append(layer)
        self.sources.append(source)


def _need(shapes, key, shape, what):
    if key not in shapes:
        raise MinicnnError(f"missing {key} ({what}, expected shape {shape})")
    if tuple(shapes[key]) != tuple(shape):
        raise MinicnnError(f"{key} should have shape {tuple(shape)} ({what}), found {tuple(shapes[key])}")


def _features(shapes, plan, used) -> tuple[int, int, list]:
    """Plan ``features``; returns (input channels, output channels, widths with "M")."""
    from minicnn.layers import Conv2D, MaxPool2D, ReLU

    convs, bns = {}, set()
    for key, shape in shapes.items():
        m = _FEATURE.fullmatch(key)
        if m is None:
            continue
        i, field = int(m.group(1)), m.group(2)
        if field == "weight" and len(shape) == 4:
            convs[i] = shape
        elif field == "running_mean":
            bns.add(i)
    if not convs:
        raise MinicnnError(f"no convolution weights found (expected {EXPECTED})")
    pos, channels, first, config = 0, None, None, []
    for c in sorted(convs):
        if c == pos + 1 and pos > 0:
            plan.add(MaxPool2D(2, name=f"features.{pos}"))
            config.append("M")
        elif c != pos:
            raise MinicnnError(
                f"features.{c}: a convolution where torchvision's VGG layout has "
                f"{'a ReLU or BatchNorm' if c < pos else 'more than one module without parameters'} "
                f"(expected the next convolution at features.{pos} or features.{pos + 1})"
            )
        out, cin, kh, kw = convs[c]
        if channels is not None and cin != channels:
            raise MinicnnError(
                f"features.{c}.weight has {cin} input channels, the layer before gives {channels}"
            )
        if kh != kw or kh % 2 == 0:
            raise MinicnnError(
                f"features.{c}.weight: expected a square odd kernel (3x3 in VGG), found {kh}x{kw}"
            )
        first = cin if first is None else first
        _need(shapes, f"features.{c}.bias", (out,), "convolution bias")
        used |= {f"features.{c}.weight", f"features.{c}.bias"}
        bn = c + 1 if c + 1 in bns else None
        if bn is not None:
            for field in ("weight", "bias", "running_mean", "running_var"):
                _need(shapes, f"features.{bn}.{field}", (out,), "BatchNorm")
                used.add(f"features.{bn}.{field}")
            if f"features.{bn}.num_batches_tracked" in shapes:
                used.add(f"features.{bn}.num_batches_tracked")
        plan.add(Conv2D(cin, out, kh, padding=kh // 2, name=f"features.{c}"), ("conv", c, bn))
        relu = c + (2 if bn is not None else 1)
        plan.add(ReLU(name=f"features.{relu}"))
        pos, channels = relu + 1, out
        config.append(out)
    plan.add(MaxPool2D(2, name=f"features.{pos}"))  # torchvision's features always end in one
    config.append("M")
    return first, channels, config


def _torchvision_head(shapes, plan, used, channels) -> int:
    from minicnn.layers import AdaptiveAvgPool2D, Dense, Dropout, Flatten, ReLU

    idx = sorted({int(m.group(1)) for k in shapes if (m := _CLASSIFIER.fullmatch(k))})
    if idx != list(range(0, 3 * len(idx), 3)):
        raise MinicnnError(
            f"classifier linear layers at {quote(idx)[1:-1]}: expected classifier.0, "
            "classifier.3, classifier.6, ... (Linear, ReLU, Dropout between them)"
        )
    width = shapes.get("classifier.0.weight", (0, 0))
    if len(width) != 2:
        raise MinicnnError(f"classifier.0.weight should be 2-D (out, in), found shape {tuple(width)}")
    side = math.isqrt(width[1] // channels) if width[1] % channels == 0 else 0
    if side < 1 or channels * side * side != width[1]:
        raise MinicnnError(
            f"classifier.0.weight reads {width[1]} inputs, expected {channels} * s * s "
            f"(the adaptive pool's s x s output of {channels} channels)"
        )
    plan.add(AdaptiveAvgPool2D(side, name="avgpool"))
    plan.add(Flatten(name="flatten"))
    fan_in = channels * side * side
    for n, i in enumerate(idx):
        out = shapes.get(f"classifier.{i}.weight", (0,))[0]
        _need(shapes, f"classifier.{i}.weight", (out, fan_in), "linear weight (out, in)")
        _need(shapes, f"classifier.{i}.bias", (out,), "linear bias")
        used |= {f"classifier.{i}.weight", f"classifier.{i}.bias"}
        plan.add(Dense(fan_in, out, name=f"classifier.{i}"), ("dense", f"classifier.{i}", None))
        if n < len(idx) - 1:
            plan.add(ReLU(name=f"classifier.{i + 1}"))
            plan.add(Dropout(0.5, name=f"classifier.{i + 2}"))
        fan_in = out
    return fan_in


def _timm_head(shapes, plan, used, channels) -> int:
    from minicnn.layers import Conv2D, Dense, Dropout, GlobalAvgPool2D, ReLU

    w1 = tuple(shapes.get("pre_logits.fc1.weight", ()))
    if len(w1) == 2 and w1[1] == channels * 49:  # some exports keep fc1 as a (4096, C*7*7) matrix
        w1 = (w1[0], channels, 7, 7)
    if len(w1) != 4 or w1[1] != channels or w1[2] != w1[3]:
        raise MinicnnError(f"pre_logits.fc1.weight should be (out, {channels}, k, k), found {w1}")
    hidden = w1[0]
    convs = (
        ("pre_logits.fc1", channels, w1[2], "act1", "drop"),
        ("pre_logits.fc2", hidden, 1, "act2", "drop2"),
    )
    for prefix, cin, k, act, drop in convs:
        shape = tuple(shapes.get(f"{prefix}.weight", ()))
        if shape not in ((hidden, cin, k, k), (hidden, cin * k * k)):
            raise MinicnnError(f"{prefix}.weight should have shape {(hidden, cin, k, k)}, found {shape}")
        _need(shapes, f"{prefix}.bias", (hidden,), "convolution bias")
        used |= {f"{prefix}.weight", f"{prefix}.bias"}
        plan.add(Conv2D(cin, hidden, k, name=prefix), ("conv", prefix, None))
        plan.add(ReLU(name=f"pre_logits.{act}"))
        plan.add(Dropout(0.5, name=f"pre_logits.{drop}"))
    plan.add(GlobalAvgPool2D(name="head.global_pool"))
    out = tuple(shapes.get("head.fc.weight", (0,)))[0]
    _need(shapes, "head.fc.weight", (out, hidden), "linear weight (out, in)")
    _need(shapes, "head.fc.bias", (out,), "linear bias")
    used |= {"head.fc.weight", "head.fc.bias"}
    plan.add(Dense(hidden, out, name="head.fc"), ("dense", "head.fc", None))
    return out


def _name(config, bn: bool, head: str) -> str:
    """torchvision's name when the convolutions per block match a configuration ("vgg16_bn"),
    with "-narrow" when the widths differ from it (test models); "vgg-style" otherwise."""
    blocks = tuple(len(b) for b in " ".join("M" if c == "M" else "c" for c in config).split("M") if b.strip())
    for name, cfg in CONFIGS.items():
        ref = tuple(len(b) for b in " ".join("M" if c == "M" else "c" for c in cfg).split("M") if b.strip())
        if blocks == ref:
            base = name + ("_bn" if bn else "") + ("" if tuple(config) == cfg else "-narrow")
            return base + ("_features" if head == "none" else "")
    return "vgg-style" + ("_bn" if bn else "")


def build_vgg(shapes: dict, read: Callable[[str], np.ndarray], source: str):
    """The Sequential a torchvision or timm VGG state dict describes, with its weights.

    shapes: every tensor name -> shape in the file; read(name) -> that tensor as a NumPy array.
    Every name and shape is checked against the architecture the keys describe before ``read`` is
    called once, so a misnamed, missing, surplus or misshapen tensor fails before any weight is read.
    source: a word for meta["source"] ("torch-zip", "safetensors", ...). Returns a float32
    Sequential; meta: architecture, input_shape [C, 224, 224], preprocess "torch", class_names
    (the ImageNet names when there are 1000 outputs), source, batchnorm_folded.
    """
    from minicnn.network import Sequential

    shapes = {k: tuple(int(d) for d in v) for k, v in shapes.items()}
    plan, used = _Plan(), set()
    channels_in, channels, config = _features(shapes, plan, used)
    has_bn = any(s is not None and s[0] == "conv" and s[2] is not None for s in plan.sources)
    if any(k.startswith(_TIMM) for k in shapes):
        head, classes = "timm", _timm_head(shapes, plan, used, channels)
    elif any(k.startswith("classifier.") for k in shapes):
        head, classes = "torchvision", _torchvision_head(shapes, plan, used, channels)
    else:
        head, classes = "none", None
    surplus = sorted(set(shapes) - used)
    if surplus:
        raise MinicnnError(
            f"unexpected key {quote(surplus[0])} (shape {quote(shapes[surplus[0]])}); expected {EXPECTED}"
        )
    for layer, src in zip(plan.layers, plan.sources):
        if src is not None:
            assign(layer, _params(layer, src, read))
    meta = {
        "architecture": _name(config, has_bn, head),
        "input_shape": [channels_in, 224, 224],
        "preprocess": "torch",
        "source": source,
        "layout": head,
        "batchnorm_folded": has_bn,
    }
    if classes == 1000:
        meta["class_names"] = imagenet_class_names()
    return Sequential(plan.layers, meta=meta)


def _params(layer, src, read) -> dict:
    kind, where, bn = src
    prefix = f"features.{where}" if isinstance(where, int) else where
    weight = read(f"{prefix}.weight")
    bias = read(f"{prefix}.bias")
    shape = layer.param_shapes()["weight"]
    if weight.shape != tuple(shape):  # timm's fc1/fc2 stored as matrices: the same numbers
        weight = weight.reshape(shape)
    if bn is not None:
        stats = [read(f"features.{bn}.{f}") for f in ("weight", "bias", "running_mean", "running_var")]
        weight, bias = fold_batchnorm(weight, bias, *stats)
    return {"weight": weight, "bias": bias}


def read_torch_file(path, fmt: str):
    """Load a ``torch.save``d VGG or ResNet state dict ("torch-zip" or "torch-legacy") without torch.

    The pickle is read by minicnn.io.torch_pickle (allow-listed records only); the weights are read
    one tensor at a time after every shape was checked (see ``build_vgg``).
    """
    from minicnn.io.torch_pickle import TorchFile
    from minicnn.io.torchvision_resnet import build_resnet, looks_like_resnet

    with TorchFile(path, fmt) as tf:
        if looks_like_resnet(tf.tensors):  # a ResNet: minicnn/io/torchvision_resnet.py
            return build_resnet({k: t.shape for k, t in tf.tensors.items()}, tf.array, fmt)
        _check_vgg(tf.tensors)
        return build_vgg({k: t.shape for k, t in tf.tensors.items()}, tf.array, fmt)


def _check_vgg(names) -> None:
    if not looks_like_vgg(names):
        first = ", ".join(quote(n, 80) for n in list(names)[:3])
        raise MinicnnError(
            f"a state dict of an architecture minicnn does not read (keys {first}, ...); expected {EXPECTED}"
        )
