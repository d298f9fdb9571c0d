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
"""

from __future__ import annotations

from minicnn.layers.conv import filter_transposed, transposed_filters  # noqa: F401 (re-exported)
from minicnn.layers.pool import unpool  # noqa: F401 (re-exported)
from minicnn.layers.relu import rectify  # noqa: F401 (re-exported)
from minicnn.tools.targets import as_batch, forward_record, one_hot, resolve_targets


def reverse_layer(layer, signal, record):
    """One reverse stage: the DeconvNet signal at ``layer``'s output -> the signal at its input.

    record: the PassRecord of the forward pass (switches from ``record.cache``, the input shape from
    the previous layer's output). Returns an array shaped like the layer's input.
    """
    return layer.reverse(signal, record.cache(layer.name), input_shape(layer, record))


def input_shape(layer, record) -> tuple:
    """The (N, ...) shape of ``layer``'s input in the forward pass of ``record``."""
    names = record.names
    i = names.index(layer.name)
    return tuple((record.input if i == 0 else record.output(names[i - 1])).shape)


def deconvnet_backward(net, record, signal, start: str | None = None, stop: str | None = None):
    """Run the reverse network from the output of layer ``start`` (default: the last layer run) down
    to the output of layer ``stop`` (default None: down to the input image).

    signal: shaped like ``start``'s output. Returns the DeconvNet signal, shaped like the input
    (N, C, H, W) or like ``stop``'s output.
    """
    names = record.names
    last = len(names) - 1 if start is None else names.index(net[start].name)
    first = 0 if stop is None else names.index(net[stop].name) + 1
    for i in range(last, first - 1, -1):
        signal = reverse_layer(net[names[i]], signal, record)
    return signal


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
