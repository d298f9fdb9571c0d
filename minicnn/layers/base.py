"""The layer interface shared by every operation, and everything a layer answers for itself.

A layer knows its output shape, the input window one of its outputs reads, and the shapes of its
parameters, so that loaders, receptive fields (top-k patches) and incremental occlusion ask the layer
instead of switching on its kind. It also owns every other fact about its kind that code elsewhere
needs (the names in DECLARATIONS): its DeconvNet reverse stage, its row of the equivalence table,
and the torch and Keras modules that compute the same thing. Nothing outside minicnn/layers keeps a
table of kinds, so a new kind cannot be forgotten there (tests/engine/test_layer_coverage.py walks
LAYER_KINDS and fails for a kind that lacks one).
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.geometry import POINTWISE, Window, output_size  # noqa: F401 (re-exported)


def he_normal(rng, shape: tuple, fan_in: int, dtype=np.float32) -> np.ndarray:
    """N(0, 2 / fan_in) weights of ``shape`` in ``dtype`` (He et al. 2015, "Delving deep into rectifiers").

    Drawn in float32 (the same values for a float32 and a float64 network of one seed), scaled in
    place: the draw is the only full-size array, so building VGG16 (fc1: 411 MB) needs no second and
    third copy (a product then a cast would hold three at once).
    """
    w = rng.standard_normal(shape, np.float32).astype(dtype, copy=False)
    # In place, computed in float64 (the scale is a float64 scalar) and rounded once into w's dtype.
    np.multiply(w, np.sqrt(2.0 / fan_in), out=w, casting="same_kind")
    return w


#: What every concrete layer class must declare itself (not inherit from Layer): the DeconvNet
#: reverse stage, the equivalence table's row, the torch and the Keras reference modules.
DECLARATIONS = ("reverse", "equivalence_row", "torch_module", "keras_layers")


def undeclared(cls) -> list[str]:
    """The names of DECLARATIONS that layer class ``cls`` inherits from Layer instead of declaring."""
    return [name for name in DECLARATIONS if getattr(cls, name) is getattr(Layer, name)]


class Layer:
    """A network stage: hyper-parameters, optional parameters, and a forward/backward pair.

    Subclasses set ``kind`` (the name stored in model files and shown to people) and implement
    ``output_shape``, ``forward`` and ``backward``; they describe their geometry through ``window``
    and ``param_shapes`` and their role through the ``is_*`` flags below (which code outside
    ``minicnn/layers`` reads instead of ``kind``). Shapes passed to ``output_shape`` exclude the
    batch axis: (C, H, W) for images, (F,) for vectors.
    """

    kind = "Layer"
    has_params = False
    # What a layer is, for tools that pick layers (Grad-CAM's last conv, inversion's targets, CAM's
    # head). Geometry never comes from these: ask window() and output_shape().
    is_convolution = False  # a learned linear filter over a local window (Conv2D)
    is_rectifier = False  # the ReLU, where the three backward rules differ
    is_pooling = False  # a fixed local reduction (max or average pooling)
    is_global_pool = False  # one value per feature map (global average pooling)
    is_linear = False  # a fully connected layer (Dense)
    is_identity_at_inference = False  # Dropout: changes nothing outside training
    is_probability = False  # turns class scores into probabilities (Softmax): scores come before it
    # Whether ``forward`` takes ``rectify=True`` and then returns max(y, 0), computed while its output
    # is in cache: a pass that keeps no pre-ReLU output (minicnn/fusion.py) fuses a ReLU reading only
    # this layer into it, and the ReLU then passes the result on (``forward_rectified``).
    fuses_rectifier = False
    # Whether ``backward`` takes the backward rule (``mode=``, minicnn/rules.py): True only
    # where a rule changes the layer's backward (the ReLU; under LRP the linear layers and Add).
    # Callers pass the rule to those layers alone (rules.layer_backward), so a layer that ignores
    # the rule never sees it.
    reads_rule = False
    # Whether the layer takes several inputs (Add): ``forward`` then takes a tuple of arrays,
    # ``output_shape`` a tuple of shapes, and ``backward`` / ``reverse`` return one signal per input.
    # Only a graph network (minicnn/graph.py) runs such a layer.
    several_inputs = False
    # The layer's row in the equivalence table (tools/equivalence.py), in the notation of Simonyan
    # et al. (2013, sec. 4): (forward pass, DeconvNet rule, gradient rule), X the forward input,
    # R the DeconvNet signal, dX the gradient.
    equivalence_row: tuple[str, str, str] | None = None

    def __init__(self, name: str | None = None):
        self.name = name

    # -- description -------------------------------------------------------------------------
    def config(self) -> dict:
        """Hyper-parameters, enough to rebuild the layer as ``type(self)(**config)``."""
        return {}

    @property
    def params(self) -> dict:
        """Parameter arrays by name ({} for layers without parameters)."""
        return {}

    def param_shapes(self) -> dict[str, tuple]:
        """The shape each parameter must have, by name ({} for layers without parameters)."""
        return {}

    def output_shape(self, shape: tuple) -> tuple:
        """Output shape (no batch axis) for an input of ``shape``; raises MinicnnError if invalid."""
        return tuple(shape)

    def window(self) -> Window | None:
        """The input window one output reads (see Window); None when every output reads the whole
        input (Flatten, Dense, global pooling). Default: pointwise."""
        return POINTWISE

    def error(self, what: str) -> MinicnnError:
        """A one-line error that names this layer."""
        return MinicnnError(f"layer {self.name or self.kind} ({self.kind}): {what}")

    def check_rank(self, shape: tuple, rank: int, expected: str) -> None:
        if len(shape) != rank:
            raise self.error(f"expected input {expected}, got shape (N, {', '.join(map(str, shape))})")

    # -- computation -------------------------------------------------------------------------
    def forward(self, x, train: bool = False, rng=None):
        """x (N, ...) -> (y, cache): the output and what ``backward`` needs."""
        raise NotImplementedError

    def forward_rectified(self, x):
        """A rectifier's forward of an input its producer already rectified (``fuses_rectifier``):
        (y, cache) as ``forward(x)`` returns them, without a pass over x. Only rectifiers have one."""
        raise self.error("is not a rectifier: its input cannot have been rectified for it")

    def forward_padded(self, x):
        """The inference forward of an input that already carries this layer's zero padding.

        Incremental occlusion cuts regions out of the padded input and runs them through here, so
        they take the layer's own lowering. Layers without padding just run ``forward``.
        """
        return self.forward(x)[0]

    def backward(self, dy, cache, need_params: bool = False):
        """dy shaped like the output -> (dx shaped like the input, {name: gradient} or None).

        A layer with ``reads_rule`` also takes ``mode`` (the backward rule) as a keyword."""
        raise NotImplementedError

    def input_gradient_cache(self, cache):
        """What ``backward`` reads of ``cache`` (what ``forward`` returned) to compute dx under
        the named rules (minicnn/rules.py, MODES) without parameter gradients; ``backward`` takes
        it in place of the cache for exactly that. A pass run with keep="input-gradient" keeps
        this (minicnn/record.py). Default: the whole cache; a layer whose cache holds more (an
        input kept for the weight gradient, an output of which the rules read only the sign)
        returns less."""
        return cache

    # -- the same layer elsewhere --------------------------------------------------------------
    def reverse(self, signal, cache, input_shape: tuple):
        """The DeconvNet reverse stage (Zeiler & Fergus 2013, sec. 2.1, fig. 1): the signal at the
        output (N, ...) -> the signal at the input, of ``input_shape`` (N, ...).

        cache: what ``forward`` returned for this pass (the switches of max pooling, the output of
        softmax). Written apart from ``backward`` (never calling it, nor the kernels of the
        gradient), so that the equivalence table compares two codes for one operation.
        """
        raise self.error("has no DeconvNet reverse stage")

    def torch_module(self, nn):
        """The torch.nn module computing what this layer computes at inference, with parameters
        named as in ``params`` (the caller copies them); ``nn`` is torch.nn."""
        raise self.error("has no torch module")

    def keras_layers(self, keras, input_shape: tuple):
        """(Keras layers computing this layer on channels-last input, {Keras layer: [its weights as
        NumPy arrays, in Keras's layout]}); ``input_shape`` is this layer's (C, H, W) or (F,) input."""
        raise self.error("has no Keras layers")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args}, name={self.name!r})"
