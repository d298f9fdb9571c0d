"""The record of one forward pass, and the backward passes that run on it.

    rec = net.run(x)                                   # a PassRecord; the network keeps no state
    scores = rec.output()                              # (N, K)
    dx = rec.backward(dy, mode="deconvnet")            # dy (N, K) -> (N, C, H, W)
    da = rec.backward(dy, stop="block5_conv3_relu")    # the signal at that layer's output (Grad-CAM)

A record holds, for every layer run, its output and the cache its backward needs (inputs, max-pool
switches, ReLU outputs): CS231n's ``out, cache = f(x)``, kept together for a whole chain. Tools hold
their own record, so a second forward pass elsewhere can never change what they compute; one record
serves any number of backward passes, e.g. the three rules of Simonyan et al. (2013, sec. 4) on one
forward pass.

A pass keeps every layer's output by default (tools read any of them). ``net.run(x, keep="caches")``
keeps the caches, the last output and only the outputs a cache holds anyway (a ReLU's output is its
cache, a convolution's input is its cache), and frees each other output once every layer reading it
has run: a convolution's output read only by a ReLU is gone. Backward under the named rules reads
caches alone, so its results are the same to the bit; asking such a record for an output it freed
(a tool, an LRP rule) is a one-line MinicnnError naming the layer.

``keep="input-gradient"`` keeps less again: in place of each cache, what the input gradient under
the named rules reads of it (``Layer.input_gradient_cache``): a ReLU's sign mask (one bit per
value) instead of its output, a convolution's input shape instead of its input. Such a record
serves backward under "gradient", "deconvnet" and "guided" with the same bits as a full record's;
a backward asking for parameter gradients (they read the inputs) or under an LRP or DeepLIFT rule
(they read outputs) is refused in one line.

``rec.backward(dy, release=True)`` goes further for a caller with one backward to run: each layer's
cache and output go once its backward has run, so the layers below never share memory with the
whole record.

``keep="output"`` is the pass for scores alone: no caches (no backward on it) and no output but the
last one, each freed once every layer reading it has run.

Both passes that free outputs also compute a ReLU inside the layer before it where that layer can
(minicnn/fusion.py): that layer's output before the ReLU exists nowhere, and asking for it is the
same one-line error.
"""

from __future__ import annotations

from minicnn.errors import MinicnnError
from minicnn.rules import MODES, assign, check_mode, layer_backward

#: the name of the network's input where a layer's inputs are named (``inputs``; minicnn/graph.py)
INPUT = "input"

#: what a forward pass keeps: ``net.run(x, keep=...)``
KEEP = {
    "all": "every layer's output and cache (tools may read any output)",
    "caches": "the caches backward reads, the last output, and only the outputs a cache holds anyway",
    "input-gradient": "what the input gradient under the named rules reads (ReLU sign bits, max-pool "
    "switches, shapes) and the last output: no parameter gradients, no LRP or DeepLIFT rule",
    "output": "the last output alone: no caches, so no backward (scores for inference)",
}


def check_keep(keep: str) -> str:
    """``keep`` if it names an entry of KEEP, else a one-line MinicnnError listing them."""
    if not isinstance(keep, str) or keep not in KEEP:
        raise MinicnnError(f"keep must be one of {', '.join(map(repr, KEEP))}, got {keep!r}")
    return keep


def holds(cache, array) -> bool:
    """Whether ``cache`` (an array, a tuple or NamedTuple of values, or a plain value) is or contains
    ``array`` itself: then keeping ``array`` in a record costs no memory."""
    if cache is array:
        return True
    return isinstance(cache, tuple) and any(holds(part, array) for part in cache)


#: what each keep level that frees outputs keeps, said when a freed output is asked for
KEPT = {
    "caches": "what backward reads",
    "input-gradient": "what the input gradient reads",
    "output": "the last output alone",
}


def freed_by_keep(keep: str) -> str:
    """Why a pass run with ``keep`` no longer holds an output, said when one is asked for."""
    return f"this pass ran with keep={keep!r} ({KEPT[keep]}); net.run(x) keeps every output"


FREED_BY_RELEASE = "backward(..., release=True) let it go with the layer's cache"


class Outputs(dict):
    """Layer name -> output (N, ...), in run order; a name in ``freed`` (name -> why: an output
    that a pass with a keep level other than "all", a fused ReLU or a backward with release=True
    let go) is a one-line MinicnnError naming the layer, not a KeyError."""

    def __init__(self, outputs, freed=None):
        super().__init__(outputs)
        self.freed = dict(freed or {})

    def __missing__(self, name):
        if name in self.freed:
            raise MinicnnError(f"the output of layer {name!r} was not kept: {self.freed[name]}")
        raise KeyError(name)


class Release:
    """Frees the outputs of a forward pass as it runs, unless ``keep`` is "all".

    With "input-gradient", each layer's cache is first cut down to what the input gradient reads
    (``Layer.input_gradient_cache``); with "output" no cache is kept at all (no backward runs on
    the pass). An output is freed once the last layer reading it has run, unless (keep="caches" or
    "input-gradient") its own layer's cache or a reader's cache holds that very array (freeing it
    would save nothing), or no layer run reads it (the last output; under ``stop=`` a graph's
    outputs read only above ``stop``). The network's input is never freed.

    inputs: layer name -> the names it reads (``INPUT``: the network's input); layers: the layers
    to run, in run order.
    """

    def __init__(self, keep: str, inputs: dict, layers):
        self.keep = check_keep(keep)
        self.freed: dict[str, str] = {}  # name -> why
        self._layers = {layer.name: layer for layer in layers}
        order = list(self._layers)
        self._position = {name: i for i, name in enumerate(order)}
        self._readers: dict[str, list[int]] = {}
        for name in order:
            for source in set(inputs[name]):
                self._readers.setdefault(source, []).append(self._position[name])
        self._inputs = inputs
        self._left = {source: len(readers) for source, readers in self._readers.items()}

    def ran(self, name: str, outputs: dict, caches: list) -> None:
        """Layer ``name`` has run (its cache is last in ``caches``): free what no one reads now."""
        if self.keep == "all":
            return
        if self.keep == "input-gradient":
            caches[-1] = self._layers[name].input_gradient_cache(caches[-1])
        if self.keep == "output":
            caches[-1] = None  # no backward runs on this pass
        for source in set(self._inputs[name]):
            self._left[source] -= 1
            if self._left[source] or source == INPUT:
                continue
            if self.keep != "output":
                keepers = [caches[i] for i in [self._position[source], *self._readers[source]]]
                if any(holds(cache, outputs[source]) for cache in keepers):
                    continue
            del outputs[source]
            self.freed[source] = freed_by_keep(self.keep)


class PassRecord:
    """What a forward pass through ``layers`` computed.

    input:   the (N, C, H, W) array the pass started from
    outputs: layer name -> that layer's output (N, ...), in layer order (``Outputs``: after a
             pass with another keep level than "all", the names in ``outputs.freed`` are
             one-line errors)
    grads:   layer name -> {"weight": ..., "bias": ...}, filled by ``backward(..., need_params=True)``
    keep:    what the pass kept (an entry of KEEP; "output": no caches, so backward and ``cache``
             are one-line errors)
    """

    def __init__(self, layers, x, caches, outputs, network_names=None, freed=None, keep: str = "all"):
        self._layers = list(layers)  # the layers run, in order
        self._network_names = list(network_names or self.names)  # every layer of the network
        self._position = {layer.name: i for i, layer in enumerate(self._layers)}
        self.input = x
        self._caches = list(caches)
        self.outputs = Outputs(outputs, freed)
        self.keep = keep
        self.grads: dict = {}
        self._released = False  # set by a backward with release=True: no cache is left to run on
        self._cacheless = keep == "output"  # the pass kept no cache: no backward runs on it

    @property
    def names(self) -> list[str]:
        """The names of the layers this pass ran, in order."""
        return [layer.name for layer in self._layers]

    @property
    def inputs(self) -> dict:
        """Layer name -> the names of the layers whose outputs it read (``INPUT``: the network's
        input); in a chain each layer reads the one before it (a GraphRecord names its own)."""
        names = [INPUT, *self.names]
        return {name: (names[i],) for i, name in enumerate(names[1:])}

    def _where(self, name: str) -> int:
        try:
            return self._position[name]
        except (KeyError, TypeError):
            if name in self._network_names:
                raise MinicnnError(
                    f"layer {name!r} was not run: the forward pass stopped at {self._layers[-1].name!r}"
                ) from None
            raise MinicnnError(
                f"unknown layer {name!r}; layers are: {', '.join(self._network_names)}"
            ) from None

    def output(self, name: str | None = None):
        """The output of layer ``name`` (default: the last layer run), (N, ...)."""
        return self.outputs[self._layers[-1].name if name is None else self._layers[self._where(name)].name]

    def cache(self, name: str):
        """The cache layer ``name`` kept: what ``layer.backward(dy, cache)`` needs (one layer's rule
        on its own, as in the equivalence table)."""
        i = self._where(name)
        self._check_caches()
        return self._caches[i]

    def _check_caches(self) -> None:
        if self._cacheless:
            raise MinicnnError(
                "this pass ran with keep='output' (the last output alone, no caches): "
                "run net.run(x) or net.run(x, keep='caches') for a backward pass"
            )
        if self._released:
            raise MinicnnError(
                "this record's caches were let go by backward(..., release=True): run the forward pass again"
            )

    def _check_backward(self, mode, need_params: bool) -> None:
        """The checks before any backward: the rule (``check_mode``), caches still held, and what a
        pass with keep="input-gradient" cannot serve (its caches lack the inputs and outputs that
        parameter gradients and rule values read)."""
        check_mode(mode)
        self._check_caches()
        if self.keep == "input-gradient" and (need_params or not isinstance(mode, str)):
            asked = "parameter gradients" if need_params else f"the rule {type(mode).__name__}"
            raise MinicnnError(
                f"this pass ran with keep='input-gradient', which serves the input gradient under "
                f"{', '.join(MODES)} only, not {asked}: run it with keep='caches' or 'all'"
            )

    def _release(self, i: int) -> None:
        """Let go of layer i's cache and output once its backward has run (release=True): from there
        down, backward needs neither, so the memory of the layers above is free for the layers below.
        The last layer's output (the scores) stays."""
        self._released = True
        self._caches[i] = None
        name = self._layers[i].name
        if i < len(self._layers) - 1 and name in self.outputs:
            del self.outputs[name]
            self.outputs.freed[name] = FREED_BY_RELEASE

    def layer_input(self, i: int):
        """What layer i (in run order) read in this pass: an array, or a tuple of arrays for a layer
        with several inputs."""
        layer = self._layers[i]
        given = [self.input if name == INPUT else self.outputs[name] for name in self.inputs[layer.name]]
        return tuple(given) if layer.several_inputs else given[0]

    def backward(self, dy, mode: str = "gradient", start: str | None = None, stop: str | None = None,
                 need_params: bool = False, release: bool = False):  # fmt: skip
        """Propagate dy from the output of layer ``start`` down to the output of layer ``stop``.

        dy: shaped like ``start``'s output (default start: the last layer run). stop: None runs down
        to the input and returns dL/dx shaped like ``input``; a layer name returns the signal at that
        layer's output, without running its backward (Grad-CAM needs dS/dA there and no more).
        mode: the backward rule, "gradient", "deconvnet" or "guided", or a rule value (an LRP rule,
        a Composite, DeepLift: minicnn/rules.py), checked here and given only to the layers that
        read one (the ReLU; under rule values the linear layers too). need_params: also
        compute weight and bias gradients, kept in ``self.grads`` (replaced on every call).
        release: let go of each layer's cache and output as soon as its backward has run, for a
        caller that runs one backward on the record (the peak is then the layers below, not the
        whole record); a later backward or cache on the record is a one-line error.
        """
        self._check_backward(mode, need_params)
        last = len(self._layers) - 1 if start is None else self._where(start)
        first = 0 if stop is None else self._where(stop) + 1
        if first > last + 1:
            raise MinicnnError(f"backward must stop at or below where it starts: {stop!r} is above {start!r}")
        expected = tuple(self.outputs[self._layers[last].name].shape)
        if tuple(dy.shape) != expected:
            raise MinicnnError(
                f"backward signal for layer {self._layers[last].name!r} must have shape {expected}, "
                f"got {tuple(dy.shape)}"
            )
        dy = dy.astype(self.input.dtype, copy=False)
        self.grads = {}
        modes = assign(mode, self._layers, self)
        for i in range(last, first - 1, -1):
            layer = self._layers[i]
            dy, grads = layer_backward(layer, dy, self._caches[i], modes[i], need_params)
            if grads is not None:
                self.grads[layer.name] = grads
            if release:
                self._release(i)
        return dy
