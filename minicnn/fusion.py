"""A ReLU computed inside the layer before it, in forward passes that keep no output before the ReLU.

    conv --> relu          keep="all":              conv's output y, then relu's max(y, 0)
    conv(+relu) --> relu   keep="caches"/"output":  conv writes max(y, 0) while each tile is in cache;
                                                    relu passes that array on as its output

A ReLU re-reads every element of its input and writes a new array: in a ResNet or VGG forward pass
that is one more trip through memory per convolution. A layer that declares ``fuses_rectifier``
(a convolution, Add, BatchNorm) computes max(v, 0) on its own output as it produces it
(``forward(x, rectify=True)``), with the ReLU's own expression, so the result is the ReLU's output
to the bit. The ReLU (``is_rectifier``) then returns that array as its output and cache
(``forward_rectified``), which is what its ``forward`` would have returned.

The fused layer's own output (before the ReLU) is never made, so fusion happens only in passes
that would not have kept it: keep="caches" and "input-gradient" (backward reads the ReLU's output,
or its sign bits, which the fused array gives the same, and the producer's cache, which fusion does
not change) and keep="output"; and only where the ReLU is the one layer reading that output.
Asking such a record for the fused layer's output is a one-line error saying why (``freed``).
"""

from __future__ import annotations

#: the keep levels (minicnn/record.py) whose passes fuse: those that free the pre-ReLU output
FUSING = ("caches", "input-gradient", "output")


class Fusion:
    """Which layers of one forward pass compute the ReLU that reads them, and the calls that do it.

    keep: the pass's keep level; inputs: layer name -> the names it reads (``"input"``: the
    network's input); layers: the layers to run, in run order.
    """

    def __init__(self, keep: str, inputs: dict, layers):
        self.keep = keep
        self.fused: dict[str, str] = {}  # producer name -> the rectifier computed inside it
        self._producer: dict[str, str] = {}  # rectifier name -> its producer
        if keep not in FUSING:
            return
        readers: dict[str, int] = {}
        for layer in layers:
            for source in set(inputs[layer.name]):
                readers[source] = readers.get(source, 0) + 1
        by_name = {layer.name: layer for layer in layers}
        for layer in layers:
            sources = inputs[layer.name]
            producer = by_name.get(sources[0]) if len(sources) == 1 else None
            if layer.is_rectifier and producer is not None and producer.fuses_rectifier:
                if readers[producer.name] == 1:
                    self.fused[producer.name] = layer.name
        self._producer = {relu: producer for producer, relu in self.fused.items()}

    def forward(self, layer, x, train: bool, rng):
        """``layer.forward(x, train=train, rng=rng)``, its ReLU computed inside it where fused:
        (y, cache)."""
        if layer.name in self.fused:
            return layer.forward(x, train=train, rng=rng, rectify=True)
        if layer.name in self._producer:
            return layer.forward_rectified(x)
        return layer.forward(x, train=train, rng=rng)

    @property
    def freed(self) -> dict[str, str]:
        """Layer name -> why its output is not in the record, for each fused layer."""
        return {
            producer: f"this pass (keep={self.keep!r}) computed the ReLU {relu!r} inside it, so its output "
            "before the ReLU was never kept; net.run(x) keeps every output"
            for producer, relu in self.fused.items()
        }

    def ran(self, name: str, outputs: dict) -> None:
        """Layer ``name`` has run: where it is a fused ReLU, its producer's entry (the same array)
        leaves ``outputs``, which would otherwise show the ReLU's output under the producer's name."""
        if name in self._producer:
            outputs.pop(self._producer[name], None)
