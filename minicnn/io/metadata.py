"""The metadata a loaded network carries (``net.meta``), checked once when the file is read.

Commands trust ``net.meta``: ``input_shape`` sets the size images are resized to, ``class_names``
labels the top-5 printout, ``preprocess`` picks the pixel convention. A file is untrusted, so each
field is checked here and a bad one is a MinicnnError (one line, no file name: the loader adds it):

    input_shape      absent, or 1 to 3 positive ints: channels <= MAX_CHANNELS, each spatial side
                     <= MAX_SIDE (a declared 100000 x 100000 input would make ``--image`` resize
                     every picture to 40 GB), and the network's layers must accept it
    class_names      absent/None, or a list of strings, one per output of the last layer
    preprocess       absent/None, or one of minicnn.io.preprocess.CONVENTIONS
    final_activation absent/None, "softmax" or "linear"
    mean_image       absent/None, or a finite array of input_shape (in the network's input space)
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError

MAX_SIDE = 8192  # 8K: twice the largest input of any common ImageNet model
MAX_CHANNELS = 4096
MAX_CLASS_NAME = 1000  # characters: a class name is a label, not a document


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def check_input_shape(shape) -> tuple:
    """``meta["input_shape"]`` -> tuple of ints, or MinicnnError saying what was expected."""
    if not isinstance(shape, (list, tuple)) or not 1 <= len(shape) <= 3 or not all(map(_is_int, shape)):
        raise MinicnnError(f"meta input_shape should be [C, H, W] (positive ints), found {shape!r:.80}")
    limits = (MAX_CHANNELS, MAX_SIDE, MAX_SIDE)[: len(shape)] if len(shape) == 3 else (2**26,) * len(shape)
    if any(not 1 <= v <= lim for v, lim in zip(shape, limits, strict=True)):
        raise MinicnnError(
            f"meta input_shape {list(shape)} out of range (channels 1..{MAX_CHANNELS}, sides 1..{MAX_SIDE})"
        )
    return tuple(int(v) for v in shape)


def check_class_names(names, outputs: int | None) -> None:
    """MinicnnError unless ``names`` is a list of strings, one per output (when outputs is known)."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise MinicnnError(f"meta class_names should be a list of strings, found {type(names).__name__}")
    if outputs is not None and len(names) != outputs:
        raise MinicnnError(f"meta class_names has {len(names)} names for {outputs} outputs")
    if any(len(n) > MAX_CLASS_NAME or "\n" in n or "\r" in n for n in names):
        raise MinicnnError(f"meta class_names: a name is over {MAX_CLASS_NAME} characters or spans lines")


def check_meta(net) -> None:
    """Check ``net.meta`` of a network just read from a file (see the module docstring)."""
    from minicnn.io.preprocess import CONVENTIONS

    meta = net.meta
    outputs = None
    if meta.get("input_shape") is not None:
        shape = check_input_shape(meta["input_shape"])
        last = net.shapes(shape)[-1]  # MinicnnError when the layers do not accept that input
        outputs = last[0] if len(last) == 1 else None
        if any(v > 2**31 for v in last):
            raise MinicnnError(f"the network's output shape {last} is out of range")
    if meta.get("class_names") is not None:
        check_class_names(meta["class_names"], outputs)
    if meta.get("preprocess") is not None and meta["preprocess"] not in CONVENTIONS:
        raise MinicnnError(
            f"meta preprocess {meta['preprocess']!r:.40} unknown (expected one of {', '.join(CONVENTIONS)})"
        )
    if meta.get("final_activation") not in (None, "softmax", "linear"):
        raise MinicnnError(
            f"meta final_activation {meta['final_activation']!r:.40} unknown (expected softmax)"
        )
    mean = meta.get("mean_image")
    if mean is not None:
        try:
            a = np.asarray(mean, dtype=np.float64)
        except (TypeError, ValueError):
            raise MinicnnError("meta mean_image should be an array of numbers") from None
        if net.input_shape is not None and a.shape != net.input_shape:
            raise MinicnnError(f"meta mean_image has shape {a.shape}, expected {net.input_shape}")
        if not np.isfinite(a).all():
            raise MinicnnError("meta mean_image holds NaN or infinite values")
