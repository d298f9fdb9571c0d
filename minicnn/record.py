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
"""

from __future__ import annotations

from minicnn.errors import MinicnnError
from minicnn.rules import assign, check_mode, layer_backward

#: the name of the network's input where a layer's inputs are named (``inputs``; minicnn/graph.py)
INPUT = "input"


class PassRecord:
    """What a forward pass through ``layers`` computed.

    input:   the (N, C, H, W) array the pass started from
    outputs: layer name -> that layer's output (N, ...), in layer order
    grads:   layer name -> {"weight": ..., "bias": ...}, filled by ``backward(..., need_params=True)``
    """

    def __init__(self, layers, x, caches, outputs, network_names=None):
        self._layers = list(layers)  # the layers run, in order
        self._network_names = list(network_names or self.names)  # every layer of the network
        self._position = {layer.name: i for i, layer in enumerate(self._layers)}
        self.input = x
        self._caches = list(caches)
        self.outputs = dict(outputs)
        self.grads: dict = {}

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
        return self._caches[self._where(name)]

    def layer_input(self, i: int):
        """What layer i (in run order) read in this pass: an array, or a tuple of arrays for a layer
        with several inputs."""
        layer = self._layers[i]
        given = [self.input if name == INPUT else self.outputs[name] for name in self.inputs[layer.name]]
        return tuple(given) if layer.several_inputs else given[0]

    def backward(self, dy, mode: str = "gradient", start: str | None = None, stop: str | None = None,
                 need_params: bool = False):  # fmt: skip
        """Propagate dy from the output of layer ``start`` down to the output of layer ``stop``.

        dy: shaped like ``start``'s output (default start: the last layer run). stop: None runs down
        to the input and returns dL/dx shaped like ``input``; a layer name returns the signal at that
        layer's output, without running its backward (Grad-CAM needs dS/dA there and no more).
        mode: the backward rule, "gradient", "deconvnet" or "guided", or a rule value (an LRP rule,
        a Composite, DeepLift: minicnn/rules.py), checked here and given only to the layers that
        read one (the ReLU; under rule values the linear layers too). need_params: also
        compute weight and bias gradients, kept in ``self.grads`` (replaced on every call).
        """
        check_mode(mode)
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
        return dy
