"""The DeconvNet of Zeiler & Fergus (2013, sec. 2.1, fig. 1), built as the paper draws it.

A reverse network is attached to the forward pass. Going down from a layer's output to its input,
each forward stage is undone by its own reverse stage (top of fig. 1, right column to left), which
the layer itself declares (``Layer.reverse``, in the layer's own file in minicnn/layers):

    forward                     reverse
    max pooling, switches  <->  unpooling: each signal goes back to the position of its window's
                                maximum, recorded as a switch in the forward pass (fig. 1, bottom)
                                (layers/pool.py: unpool)
    rectification (ReLU)   <->  rectification: the ReLU applied to the reverse signal itself
                                (layers/relu.py: rectify)
    filtering (conv)       <->  filtering with the transposed filters: the same filters flipped
                                vertically and horizontally, input and output channels swapped,
                                applied as an ordinary (forward) convolution (layers/conv.py:
                                filter_transposed)
    dense layer W          <->  W^T, a plain matrix product (layers/dense.py: dense_transposed)
    average pooling A      <->  A^T: the averaging's transpose, each signal spread over its window
                                (layers/avgpool.py: transpose_average); global average pooling:
                                each map's signal spread evenly over its h x w positions
    flatten                <->  reshape back

No reverse stage calls a layer's ``backward`` or the kernels of the gradient (col2im, the Winograd
adjoint, the max-pool scatter): the equivalence table (tools/equivalence.py) compares this reverse
network, layer by layer, with the gradient rule, and the comparison only means something because
the two are separate code (Simonyan et al. 2013, sec. 4, show they agree everywhere except at the
ReLU).

The switches and every layer's input shape are read from a PassRecord of the forward pass
(``rec.cache(name)``, ``rec.output(name)``), so one forward pass serves any number of reverse passes.

On a graph network (minicnn/graph.py, residual blocks) the reverse network is the graph reversed:
a layer with several inputs (Add) returns one reverse signal per input (for a sum, the signal
itself, copied to each branch), and where one output fed several layers (a block's input feeds
the block and its shortcut) the reverse signals coming back from them add up, as the transpose of
copying a signal to several readers is their sum. A chain is the graph in which each layer reads
the one before it (``record.inputs``).

Guided backpropagation (Springenberg et al. 2015, fig. 1) is this reverse network with one change
at each rectifier: the DeconvNet's rectification of the signal composed with the forward pass's
mask, max(R, 0) [X > 0], X the rectifier's input read from the record (``guided_stage``). It is
built here from the same reverse stages, apart from the engine's "guided" backward rule, so the
equivalence suite can compare the two.
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.layers.conv import filter_transposed, transposed_filters  # noqa: F401 (re-exported)
from minicnn.layers.pool import unpool  # noqa: F401 (re-exported)
from minicnn.layers.relu import rectify  # noqa: F401 (re-exported)
from minicnn.record import INPUT
from minicnn.tools.targets import as_batch, forward_record, one_hot, resolve_targets


def reverse_layer(layer, signal, record):
    """One reverse stage: the DeconvNet signal at ``layer``'s output -> the signal at its input.

    record: the PassRecord of the forward pass (switches from ``record.cache``, the input shape from
    the output the layer read). Returns an array shaped like the layer's input; for a layer with
    several inputs (Add), a tuple of them, one per input.
    """
    return layer.reverse(signal, record.cache(layer.name), input_shape(layer, record))


def input_shape(layer, record) -> tuple:
    """The (N, ...) shape of ``layer``'s (first) input in the forward pass of ``record``."""
    return tuple(forward_input(layer, record).shape)


def forward_input(layer, record):
    """``layer``'s (first) input X in the forward pass of ``record``, (N, ...): the output of the
    layer it reads, or the image."""
    source = record.inputs[layer.name][0]
    return record.input if source == INPUT else record.output(source)


def guided_stage(layer, signal, record):
    """One reverse stage of guided backpropagation (Springenberg et al. 2015, fig. 1): at a
    rectifier, the DeconvNet's rectification times the forward mask, max(R, 0) [X > 0] with X the
    rectifier's recorded input (not its cache); elsewhere the DeconvNet's reverse stage."""
    if not layer.is_rectifier:
        return reverse_layer(layer, signal, record)
    x = forward_input(layer, record)
    return rectify(signal) * (x > 0)


def walk(net, record, signal, stage, start: str | None = None, stop: str | None = None):
    """Run ``stage(layer, signal) -> signal below`` from the output of ``start`` (default: the last
    layer run) down, layer by layer in reverse run order, yielding ``(name, signal at that layer's
    output)`` for each layer the signal reaches and, last, ``(INPUT, signal at the image)`` (None
    when ``start`` does not depend on the image). Stops after yielding ``stop``'s output when given.

    In a graph a layer with several inputs returns one signal per input, and the signals of a
    node's readers add (a new array, never a sum in place: one stage may hand one array to two
    inputs)."""
    names = record.names
    last = len(names) - 1 if start is None else names.index(net[start].name)
    first = 0 if stop is None else names.index(net[stop].name)
    signals = {names[last]: signal}
    for i in range(last, first - 1, -1):
        layer = net[names[i]]
        if layer.name not in signals:  # no signal reaches it from ``start``
            continue
        here = signals.pop(layer.name)
        yield layer.name, here
        if stop is not None and i == first:
            return
        below = stage(layer, here)
        for source, part in zip(record.inputs[layer.name], below if layer.several_inputs else (below,)):
            signals[source] = part if source not in signals else signals[source] + part
    yield INPUT, signals.get(INPUT)


def deconvnet_backward(net, record, signal, start: str | None = None, stop: str | None = None):
    """Run the reverse network from the output of layer ``start`` (default: the last layer run) down
    to the output of layer ``stop`` (default None: down to the input image).

    signal: shaped like ``start``'s output. Returns the DeconvNet signal, shaped like the input
    (N, C, H, W) or like ``stop``'s output.
    """
    return run_down(net, record, signal, lambda layer, s: reverse_layer(layer, s, record), start, stop)


def guided_backward(net, record, signal, start: str | None = None, stop: str | None = None):
    """Guided backpropagation built from the reverse network (``guided_stage``), as
    ``deconvnet_backward``: the signal at the image (N, C, H, W) or at ``stop``'s output."""
    return run_down(net, record, signal, lambda layer, s: guided_stage(layer, s, record), start, stop)


def run_down(net, record, signal, stage, start=None, stop=None):
    """The signal that ``walk`` delivers at the image (stop None) or at ``stop``'s output; zeros
    shaped like it when ``start`` does not depend on it."""
    wanted = INPUT if stop is None else net[stop].name
    found = None
    for name, here in walk(net, record, signal, stage, start, stop):
        if name == wanted:
            found = here
    if found is None:  # ``start`` does not depend on it: the reverse signal there is zero
        shape = record.input.shape if stop is None else record.output(wanted).shape
        return get_xp(signal).zeros(shape, dtype=signal.dtype)
    return found


def deconvnet(net, x, target="predicted", record=None):
    """The class-specific DeconvNet reconstruction (Simonyan et al. 2013, sec. 4): the reverse
    network run from the one-hot target score down to the image.

    x: (N, C, H, W) or (C, H, W) in network-input space; target: class index, list of N indices, or
    "predicted"; record: the PassRecord of a full forward pass over x already run (reused).
    Returns (N, C, H, W) of net.dtype on the network's device.
    """
    x = as_batch(net, x)
    rec = forward_record(net, x, record)
    scores = rec.output()
    return deconvnet_backward(net, rec, one_hot(resolve_targets(target, scores), scores))
