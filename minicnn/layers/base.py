"""The layer interface shared by every operation, and the geometry every layer answers for itself.

A layer knows its output shape, the input window one of its outputs reads, and the shapes of its
parameters, so that loaders, receptive fields (top-k patches) and incremental occlusion ask the layer
instead of switching on its kind.
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.geometry import POINTWISE, Window, output_size  # noqa: F401 (re-exported)


def he_normal(rng, shape: tuple, fan_in: int, dtype=np.float32) -> np.ndarray:
    """N(0, 2 / fan_in) weights of ``shape`` in ``dtype`` (He et al. 2015, "Delving deep into rectifiers").

    Drawn in float32 (the same values for a float32 and a float64 network of one seed), scaled in
    place: the draw is the only full-size array, so building VGG16 (fc1: 411 MB) needs no second and
    third copy (a product then a cast held three: the whole build's peak was 1.38 GB, not 0.64).
    """
    w = rng.standard_normal(shape, np.float32).astype(dtype, copy=False)
    # In place, computed in float64 (the scale is a float64 scalar) and rounded once into w's dtype.
    np.multiply(w, np.sqrt(2.0 / fan_in), out=w, casting="same_kind")
    return w


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

    def forward_padded(self, x):
        """The inference forward of an input that already carries this layer's zero padding.

        Incremental occlusion cuts regions out of the padded input and runs them through here, so
        they take the layer's own lowering. Layers without padding just run ``forward``.
        """
        return self.forward(x)[0]

    def backward(self, dy, cache, mode: str = "gradient", need_params: bool = False):
        """dy shaped like the output -> (dx shaped like the input, {name: gradient} or None)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args}, name={self.name!r})"
