"""Sequential: a chain of layers; a forward pass returns its record, backward runs on a record.

    net = Sequential([...], seed=0)
    rec = net.run(x)                             # x (N, C, H, W) -> PassRecord (minicnn/record.py)
    scores = rec.output()                        # class scores (N, K)
    dx = rec.backward(dy, mode="deconvnet")      # dy shaped like the scores -> (N, C, H, W)

The record keeps each layer's cache (inputs, switches, ReLU outputs) and output; backward can start
from the network output or from any named layer, with a signal shaped like that layer's output (one
unit, one feature map, ...), and stop at any named layer. ``mode`` changes only the ReLU rule (see
minicnn/layers/relu.py).

``net.forward(x)`` / ``net.backward(dy)`` are the same thing for the last pass, kept on the network
(``net.last``) for short scripts; tools hold their own records.
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import device_of, get_xp, module_for, to_device
from minicnn.errors import MinicnnError
from minicnn.fusion import Fusion
from minicnn.layers.base import Layer
from minicnn.record import INPUT, PassRecord, Release
from minicnn.seeding import make_rng


class Sequential:
    """A chain of layers with unique names.

    Args:
        layers: Layer objects; a layer without a name gets ``<kind>_<i>`` (``conv2d_0``, ``relu_3``).
        seed: seeds the He initialisation of layers whose parameters are not set yet.
        meta: free-form metadata (class names, input size, preprocessing, provenance), saved in files.
        dtype: parameter dtype, float32 by default; use ``astype(np.float64)`` for gradient checks.
    """

    #: Whether each layer reads the output of the layer before it (a Graph's nodes name their
    #: inputs instead): code that walks ``layers`` as a chain asks ``require_chain`` first.
    is_chain = True

    def __init__(self, layers, seed=None, meta=None, dtype=np.float32):
        self.layers: list[Layer] = list(layers)
        if not self.layers:
            raise MinicnnError("a Sequential network needs at least one layer")
        counts: dict[str, int] = {}
        for layer in self.layers:
            if not isinstance(layer, Layer):
                raise MinicnnError(f"expected Layer objects, got {type(layer).__name__}")
            if layer.name is None:
                base = layer.kind.lower()
                layer.name = f"{base}_{counts.get(base, 0)}"
                counts[base] = counts.get(base, 0) + 1
        several = [layer.name for layer in self.layers if layer.several_inputs]
        if several and self.is_chain:  # a chain hands each layer one array (minicnn/graph.py names inputs)
            raise MinicnnError(
                f"layer {several[0]!r} takes several inputs: a chain cannot run it, a Graph can"
            )
        names = [layer.name for layer in self.layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise MinicnnError(f"layer names must be unique; repeated: {', '.join(duplicates)}")
        self._index = {name: i for i, name in enumerate(names)}
        self.meta = dict(meta or {})
        rng = make_rng(seed)
        for layer in self.layers:
            if layer.has_params and layer.weight is None:
                layer.init_params(rng, dtype)
        self.dtype = np.dtype(dtype)
        self.device = "cpu"  # where the parameters live, "cpu" or "gpu" (set by ``to``)
        self.last: PassRecord | None = None  # the record of the last ``forward`` (for short scripts)
        self._grads: dict = {}  # the parameter gradients of the last ``backward`` (the optimiser's input)

    def require_chain(self, what: str) -> None:
        """MinicnnError unless the network is a chain: ``what`` walks ``layers`` one after another."""
        if not self.is_chain:
            name = self.meta.get("architecture", "this network")
            raise MinicnnError(f"{what} runs on chains of layers (Sequential); {name} is a graph of layers")

    @property
    def inputs(self) -> dict:
        """Layer name -> the names of the layers it reads (``"input"``: the network's input); in a
        chain, the layer before it."""
        names = [INPUT, *self.names]
        return {name: (names[i],) for i, name in enumerate(names[1:])}

    # -- names ---------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def index(self, name: str) -> int:
        """Position of the layer called ``name``; MinicnnError listing the valid names otherwise."""
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise MinicnnError(f"unknown layer {name!r}; layers are: {', '.join(self.names)}") from None

    def __getitem__(self, key):
        return self.layers[key] if isinstance(key, int) else self.layers[self.index(key)]

    def __len__(self):
        return len(self.layers)

    # -- shapes --------------------------------------------------------------------------------
    @property
    def input_shape(self):
        """(C, H, W) the network was built for, from ``meta['input_shape']``; None if unknown."""
        shape = self.meta.get("input_shape")
        return tuple(shape) if shape is not None else None

    def shapes(self, input_shape=None) -> list[tuple]:
        """Output shape (no batch axis) of every layer for ``input_shape`` (C, H, W)."""
        shape = tuple(input_shape or self.input_shape or ())
        if not shape:
            raise MinicnnError("input shape unknown: pass input_shape=(C, H, W)")
        out = []
        for layer in self.layers:
            shape = layer.output_shape(shape)
            out.append(shape)
        return out

    # -- computation ---------------------------------------------------------------------------
    @property
    def xp(self):
        """The array module (numpy or cupy) of the network's parameters and of its inputs."""
        return module_for(self.device)

    def check_input(self, x) -> None:
        """Raise MinicnnError unless x is a finite (N, ...) array of the network's dtype and device."""
        if not hasattr(x, "dtype") or not hasattr(x, "shape"):
            raise MinicnnError(f"expected an array (N, C, H, W), got {type(x).__name__}")
        if device_of(x) != self.device:
            raise MinicnnError(f"input is on the wrong device: the network is on {self.device}")
        xp = get_xp(x)
        if x.dtype != self.dtype:
            raise MinicnnError(f"expected input of dtype {self.dtype}, got {x.dtype}")
        if x.ndim < 2 or x.shape[0] < 1:
            raise MinicnnError(f"expected a batch (N, C, H, W), got shape {tuple(x.shape)}")
        if not bool(xp.isfinite(x).all()):
            raise MinicnnError("input contains NaN or Inf")

    def run(self, x, stop: str | None = None, train: bool = False, rng=None, keep: str = "all") -> PassRecord:
        """Run the layers up to ``stop`` (inclusive; default all) and return the record of the pass.

        x: (N, C, H, W) array of the network's dtype on its device. ``train`` enables dropout
        (with ``rng``, a numpy Generator). ``keep``: "all" keeps every layer's output; "caches"
        keeps what backward reads and frees the other outputs as the pass goes, "input-gradient"
        only what the input gradient under the named rules reads, "output" the last output alone
        (scores, no backward) (minicnn/record.py, KEEP). All three compute a ReLU inside the layer
        before it where they can (minicnn/fusion.py): the same bits. The network itself keeps nothing.
        """
        self.check_input(x)
        last = len(self.layers) - 1 if stop is None else self.index(stop)
        run = self.layers[: last + 1]
        release = Release(keep, self.inputs, run)
        fusion = Fusion(keep, self.inputs, run)
        caches, outputs, y = [], {}, x
        for layer in run:
            y, cache = fusion.forward(layer, y, train, rng)
            caches.append(cache)
            del cache  # held by the list alone, so that Release's cut-down cache (and a freed input) go now
            outputs[layer.name] = y
            release.ran(layer.name, outputs, caches)
            fusion.ran(layer.name, outputs)
        return PassRecord(run, x, caches, outputs, self.names, {**release.freed, **fusion.freed}, keep)

    def forward(self, x, train: bool = False, stop: str | None = None, rng=None):
        """``run`` that keeps the record as ``net.last`` and returns the last output.

        For short scripts and the README's API; tools use ``run`` and hold their own record.
        """
        # Drop the previous pass first, so that its activations can be freed before new ones are
        # allocated (peak memory: one pass, not two).
        self.last = None
        self.last = self.run(x, stop=stop, train=train, rng=rng)
        return self.last.output()

    def _last_pass(self) -> PassRecord:
        if self.last is None:
            raise MinicnnError("backward called before forward")
        return self.last

    def backward(self, dy, mode: str = "gradient", start: str | None = None, stop: str | None = None,
                 need_params=False):  # fmt: skip
        """``net.last.backward(...)``: propagate dy through the last forward pass (see
        PassRecord.backward); parameter gradients land in ``net.grads``."""
        record = self._last_pass()  # (the record checks mode, start, stop and dy's shape)
        dx = record.backward(dy, mode=mode, start=start, stop=stop, need_params=need_params)
        self._grads = record.grads  # kept until the next backward, whatever forwards run meanwhile
        return dx

    @property
    def outputs(self) -> dict:
        """Layer name -> output of the last ``forward`` ({} before one)."""
        return self.last.outputs if self.last is not None else {}

    @property
    def grads(self) -> dict:
        """Layer name -> {"weight", "bias"} gradients of the last ``backward`` ({} unless it was
        called with need_params=True)."""
        return self._grads

    def cache(self, name: str):
        """The cache layer ``name`` kept in the last forward (see PassRecord.cache)."""
        self.index(name)  # unknown names list the valid ones
        if self.last is None:
            raise MinicnnError(f"no cache for layer {name!r}: run a forward pass through it first")
        return self.last.cache(name)

    def __call__(self, x):
        return self.forward(x)

    # -- parameters and placement --------------------------------------------------------------
    def parameters(self):
        """Yield (layer, key, array) for every parameter, in layer order."""
        for layer in self.layers:
            for key, value in layer.params.items():
                yield layer, key, value

    def num_params(self) -> int:
        return int(sum(v.size for _, _, v in self.parameters()))

    def _map_params(self, fn):
        for layer, key, value in list(self.parameters()):
            setattr(layer, key, fn(value))
        self.last, self._grads = None, {}

    def astype(self, dtype):
        """Convert every parameter to ``dtype`` in place; returns self."""
        self.dtype = np.dtype(dtype)
        self._map_params(lambda v: v.astype(self.dtype))
        return self

    def to(self, device: str):
        """Move every parameter to ``device`` ("cpu" or "gpu") in place; returns self."""
        module_for(device)  # fails early, with the reason, if there is no GPU
        self._map_params(lambda v: to_device(v, device))
        self.device = device
        return self

    def summary(self, input_shape=None) -> str:
        """A table of layer names, kinds, output shapes and parameter counts. Each column is as wide
        as its longest entry and columns are two spaces apart, so long names (ONNX's
        ``/features/features.0/Conv``) never run into the next column."""
        shapes = self.shapes(input_shape)
        counts = [sum(v.size for v in layer.params.values() if v is not None) for layer in self.layers]
        cells = [
            (layer.name, layer.kind, str(shape), f"{count:,}")
            for layer, shape, count in zip(self.layers, shapes, counts)
        ]
        header = ("layer", "kind", "output", "params")
        total = f"{self.num_params():,}"
        widths = [max(len(row[i]) for row in [header, *cells]) for i in range(4)]
        widths[3] = max(widths[3], len(total))

        def line(name, kind, shape, count):
            return "  ".join((name.ljust(widths[0]), kind.ljust(widths[1]), shape.ljust(widths[2]),
                              count.rjust(widths[3])))  # fmt: skip

        return "\n".join([line(*header), *(line(*row) for row in cells), line("total", "", "", total)])

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n])"
