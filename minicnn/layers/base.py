"""The layer interface shared by every operation."""

from __future__ import annotations

from minicnn.errors import MinicnnError


class Layer:
    """A network stage: hyper-parameters, optional parameters, and a forward/backward pair.

    Subclasses set ``kind`` (the name stored in model files) and implement ``output_shape``,
    ``forward`` and ``backward``. Shapes passed to ``output_shape`` exclude the batch axis:
    (C, H, W) for images, (F,) for vectors.
    """

    kind = "Layer"
    has_params = False

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

    def output_shape(self, shape: tuple) -> tuple:
        """Output shape (no batch axis) for an input of ``shape``; raises MinicnnError if invalid."""
        return tuple(shape)

    def error(self, what: str) -> MinicnnError:
        """A one-line error that names this layer."""
        return MinicnnError(f"layer {self.name or self.kind} ({self.kind}): {what}")

    def check_rank(self, shape: tuple, rank: int, expected: str) -> None:
        if len(shape) != rank:
            raise self.error(f"expected input {expected}, got shape (N, {', '.join(map(str, shape))})")

    # -- computation -------------------------------------------------------------------------
    def forward(self, x, train: bool = False, rng=None):
        raise NotImplementedError

    def backward(self, dy, cache, mode: str = "gradient", need_params: bool = False):
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args}, name={self.name!r})"
