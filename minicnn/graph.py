"""Graph: a network whose layers form a small directed acyclic graph (residual blocks), not a chain.

    net = Graph([
        Conv2D(3, 8, 3, padding=1, name="conv"),            # reads the previous node: the input
        ReLU(name="relu"),                                  # reads "conv"
        (Conv2D(8, 8, 3, padding=1, name="branch"), "relu"),
        (Add(name="add"), ("relu", "branch")),              # several inputs: a tuple of names
        ReLU(name="out"),
    ])
    rec = net.run(x)                                        # a GraphRecord (a PassRecord)
    dx = rec.backward(dy, mode="guided")

Each node is a layer and the names of the nodes it reads; ``INPUT`` ("input") names the network's
input. A bare layer reads the node listed before it (the first one reads the input), so a list of
layers is a chain, as in Sequential. The last node listed is the output. Nodes run in topological
order (the listed order where it is one), and a graph is refused in one line naming the node when
it has a cycle, reads a name that no node has, leaves a node's output unused, or adds shapes that
differ (``shapes``).

A layer with ``several_inputs`` (Add) receives a tuple of its inputs' outputs. Backward walks the
nodes in reverse order and keeps one signal per node output: a node's backward adds its input
signal(s) into the signal of each node it read, so where branches meet (an output read by two
nodes) the two signals add (the derivative of a sum of paths). Everything else is Sequential's
(names, dtype, device, forward / backward on ``net.last``, parameters, summary).
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError, quote
from minicnn.fusion import Fusion
from minicnn.network import Sequential
from minicnn.record import INPUT, PassRecord, Release
from minicnn.rules import assign, layer_backward


def _parse(nodes) -> tuple[list, dict]:
    """(layers as listed, layer name -> tuple of input names) from the node list of ``Graph``.

    Layers without a name are named later by Sequential; here a bare layer's input is the node
    before it, kept by position until the names exist."""
    layers, inputs, previous = [], [], INPUT
    for i, node in enumerate(nodes):
        if isinstance(node, tuple):
            if len(node) != 2:
                raise MinicnnError(f"graph node {i}: expected a layer or (layer, input names), got {node!r}")
            layer, reads = node
            reads = (reads,) if isinstance(reads, str) else tuple(reads)
        else:
            layer, reads = node, None
        layers.append(layer)
        inputs.append(reads if reads is not None else previous)
        previous = i  # a position, resolved to the name once every layer has one
    return layers, inputs


def topological_order(names: list[str], inputs: dict) -> list[str]:
    """``names`` ordered so that every node comes after the nodes it reads (the listed order kept
    where possible); a MinicnnError naming a node on a cycle otherwise."""
    placed, order, pending = {INPUT}, [], list(names)
    while pending:
        ready = next((n for n in pending if all(r in placed for r in inputs[n])), None)
        if ready is None:  # every pending node waits on another pending node: a cycle
            node = pending[0]
            waits = next(r for r in inputs[node] if r not in placed)
            raise MinicnnError(
                f"graph node {quote(node)} is on a cycle: it reads {quote(waits)}, which depends on it"
            )
        pending.remove(ready)
        placed.add(ready)
        order.append(ready)
    return order


class Graph(Sequential):
    """A network whose nodes are layers with named inputs; the last node listed is the output.

    Args:
        nodes: each a Layer (reads the node listed before it, or the input) or (Layer, name) or
            (Layer, (name, name, ...)) for layers with ``several_inputs``; ``"input"`` is the input.
        seed, meta, dtype: as Sequential's.
    """

    is_chain = False

    def __init__(self, nodes, seed=None, meta=None, dtype=np.float32):
        layers, reads = _parse(list(nodes))
        super().__init__(layers, seed=seed, meta=meta, dtype=dtype)  # names every layer, checks them
        if INPUT in self._index:
            raise MinicnnError(f"a graph node may not be called {INPUT!r}: that name is the network's input")
        listed = [layer.name for layer in layers]
        inputs = {}
        for layer, r in zip(layers, reads):
            names = (listed[r],) if isinstance(r, int) else r if isinstance(r, tuple) else (r,)
            for name in names:
                if name != INPUT and name not in self._index:
                    raise MinicnnError(
                        f"graph node {quote(layer.name)} reads {quote(name)}, which is not a node "
                        f"(nodes: {quote(', '.join(listed), 200)[1:-1]}; the network's input is {INPUT!r})"
                    )
            if len(names) != 1 and not layer.several_inputs:
                raise MinicnnError(f"graph node {quote(layer.name)} takes one input, given {len(names)}")
            if len(names) < 2 and layer.several_inputs:
                raise MinicnnError(f"graph node {quote(layer.name)} takes two or more inputs, given 1")
            inputs[layer.name] = tuple(names)
        order = topological_order(listed, inputs)
        output = listed[-1]
        read = {name for names in inputs.values() for name in names}
        unused = [name for name in listed if name not in read and name != output]
        if unused:
            raise MinicnnError(
                f"graph node {quote(unused[0])}: its output is never read "
                f"(the output is the last node {quote(output)})"
            )
        self.layers = [self[name] for name in order]
        self._index = {name: i for i, name in enumerate(order)}
        self._inputs = inputs  # layer name -> the names of the nodes it reads, in order
        if self.input_shape is not None:
            self.shapes()  # bad shapes fail now, naming the node

    @property
    def inputs(self) -> dict:
        """Layer name -> the names of the nodes it reads, in order (``"input"``: the network's input)."""
        return self._inputs

    def shapes(self, input_shape=None) -> list[tuple]:
        """Output shape (no batch axis) of every node, in run order, for ``input_shape`` (C, H, W);
        MinicnnError naming the node whose inputs do not fit it (an Add of different shapes)."""
        shape = tuple(input_shape or self.input_shape or ())
        if not shape:
            raise MinicnnError("input shape unknown: pass input_shape=(C, H, W)")
        known = {INPUT: shape}
        for layer in self.layers:
            given = [known[name] for name in self.inputs[layer.name]]
            known[layer.name] = layer.output_shape(given if layer.several_inputs else given[0])
        return [known[layer.name] for layer in self.layers]

    def run(
        self, x, stop: str | None = None, train: bool = False, rng=None, keep: str = "all"
    ) -> GraphRecord:
        """Run the nodes in order up to ``stop`` (inclusive; default all); returns the GraphRecord.

        x: (N, C, H, W) array of the network's dtype on its device. ``keep``: "all" keeps every
        node's output (tools read any node's output); "caches" frees an output once every node
        reading it has run, unless a cache holds it, "input-gradient" keeps only what the input
        gradient reads, "output" the last output alone (minicnn/record.py, KEEP); all three fuse
        ReLUs into the nodes before them (minicnn/fusion.py), as in Sequential.
        """
        self.check_input(x)
        last = len(self.layers) - 1 if stop is None else self.index(stop)
        run = self.layers[: last + 1]
        release = Release(keep, self.inputs, run)
        fusion = Fusion(keep, self.inputs, run)
        caches, outputs = [], {INPUT: x}
        for layer in run:
            given = [outputs[name] for name in self.inputs[layer.name]]
            y, cache = fusion.forward(layer, tuple(given) if layer.several_inputs else given[0], train, rng)
            del given  # the inputs' references, so that a freed input goes now
            caches.append(cache)
            del cache  # held by the list alone, so that Release's cut-down cache (and a freed input) go now
            outputs[layer.name] = y
            release.ran(layer.name, outputs, caches)
            fusion.ran(layer.name, outputs)
        del outputs[INPUT]
        freed = {**release.freed, **fusion.freed}
        return GraphRecord(run, x, caches, outputs, self.names, self.inputs, freed, keep)

    def blocks(self) -> list[tuple[int, str, object]]:
        """The nodes in run order as an indented list of blocks: (depth, name, layer), with a row
        (depth, block name, None) opening each block.

        A block is a dotted prefix of two or more node names (``layer1`` and ``layer1.0`` hold
        ``layer1.0.conv1``, ``layer1.0.bn1``, ...); a node is one level deeper than the innermost
        block it is in. A node named like a block (``layer1.0``, the ReLU after the sum) comes
        after its block, at the block's own depth: it is the block's output."""
        members: dict[str, int] = {}
        for name in self.names:
            parts = name.split(".")
            for k in range(1, len(parts)):
                prefix = ".".join(parts[:k])
                members[prefix] = members.get(prefix, 0) + 1
        rows, open_blocks = [], []
        for layer in self.layers:
            parts = layer.name.split(".")
            prefixes = [".".join(parts[:k]) for k in range(1, len(parts))]
            blocks = [p for p in prefixes if members.get(p, 0) >= 2]
            while open_blocks != blocks[: len(open_blocks)]:
                open_blocks.pop()
            for block in blocks[len(open_blocks) :]:
                rows.append((len(open_blocks), block, None))
                open_blocks.append(block)
            rows.append((len(open_blocks), layer.name, layer))
        return rows

    def summary(self, input_shape=None) -> str:
        """Sequential's table drawn as an indented list of blocks (``blocks``), with a last column
        naming what each node reads where it reads more than the row above it (a branch's start,
        a sum's inputs). Names are written whole: they are what every --layer option accepts."""
        shapes = dict(zip(self.names, self.shapes(input_shape)))
        cells, previous = [], INPUT
        for depth, name, layer in self.blocks():
            indent = "  " * depth
            if layer is None:
                cells.append((indent + name, "", "", "", ""))
                continue
            count = sum(v.size for v in layer.params.values() if v is not None)
            reads = self.inputs[name]
            shown = "" if reads == (previous,) else ", ".join(reads)
            cells.append((indent + name, layer.kind, str(shapes[name]), f"{count:,}", shown))
            previous = name
        header = ("layer", "kind", "output", "params", "reads")
        total = f"{self.num_params():,}"
        widths = [max(len(row[i]) for row in [header, *cells]) for i in range(4)]
        widths[3] = max(widths[3], len(total))

        def line(name, kind, shape, count, reads=""):
            text = "  ".join((name.ljust(widths[0]), kind.ljust(widths[1]), shape.ljust(widths[2]),
                              count.rjust(widths[3]), reads))  # fmt: skip
            return text.rstrip()

        return "\n".join([line(*header), *(line(*row) for row in cells), line("total", "", "", total)])

    def __repr__(self):
        inner = ",\n  ".join(f"({layer!r}, {self.inputs[layer.name]!r})" for layer in self.layers)
        return f"Graph([\n  {inner}\n])"


class GraphRecord(PassRecord):
    """A PassRecord of a Graph: the same outputs, caches and names, with the inputs of each node,
    so that ``backward`` sends each node's input signals to the nodes it read and adds them there."""

    def __init__(self, layers, x, caches, outputs, network_names, inputs, freed=None, keep="all"):
        super().__init__(layers, x, caches, outputs, network_names, freed, keep)
        self._inputs = dict(inputs)

    @property
    def inputs(self) -> dict:
        """Layer name -> the names of the nodes it read, in order (``"input"``: the network's input)."""
        return self._inputs

    def backward(self, dy, mode: str = "gradient", start: str | None = None, stop: str | None = None,
                 need_params: bool = False, release: bool = False):  # fmt: skip
        """As PassRecord.backward: dy shaped like ``start``'s output (default: the last node run)
        -> the signal at the input (stop None) or at ``stop``'s output; ``release`` lets go of each
        node's cache and output once its backward has run.

        Signals are kept per node output; a node's backward adds into the signal of each node it
        read, so an output read by several nodes (a residual block's input) receives the sum of
        their signals before its own node runs (nodes run in reverse topological order, after
        every reader). Nodes that ``start`` does not depend on receive nothing and do not run.
        """
        self._check_backward(mode, need_params)
        last = len(self._layers) - 1 if start is None else self._where(start)
        first = 0 if stop is None else self._where(stop) + 1
        if first > last + 1:
            raise MinicnnError(f"backward must stop at or below where it starts: {stop!r} is above {start!r}")
        top = self._layers[last].name
        expected = tuple(self.outputs[top].shape)
        if tuple(dy.shape) != expected:
            raise MinicnnError(
                f"backward signal for layer {top!r} must have shape {expected}, got {tuple(dy.shape)}"
            )
        signals = {top: dy.astype(self.input.dtype, copy=False)}
        self.grads = {}
        modes = assign(mode, self._layers, self)  # the rule each node receives (minicnn/rules.py)
        for i in range(last, first - 1, -1):
            layer = self._layers[i]
            if layer.name not in signals:  # not on a path from start: nothing flows through it
                continue
            dx, grads = layer_backward(layer, signals.pop(layer.name), self._caches[i], modes[i], need_params)
            if grads is not None:
                self.grads[layer.name] = grads
            if release:
                self._release(i)
            sources = self.inputs[layer.name]
            for name, signal in zip(sources, dx if layer.several_inputs else (dx,)):
                # a new array, never an in-place sum: a layer may hand the same array to two inputs
                signals[name] = signal if name not in signals else signals[name] + signal
        wanted = INPUT if stop is None else stop
        if wanted not in signals:  # start does not depend on it: its signal is zero
            shape = self.input.shape if stop is None else self.outputs[stop].shape
            return get_xp(self.input).zeros(shape, dtype=self.input.dtype)
        return signals[wanted]
