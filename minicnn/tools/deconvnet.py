"""The DeconvNet of Zeiler & Fergus (2013, sec. 2.1, fig. 1), built as the paper draws it.

A reverse network is attached to the forward pass. Going down from a layer's output to its input,
each forward stage is undone by its own reverse stage (top of fig. 1, right column to left):

    forward                     reverse (this module)
    max pooling, switches  <->  unpooling: each signal goes back to the position of its window's
                                maximum, recorded as a switch in the forward pass (fig. 1, bottom)
    rectification (ReLU)   <->  rectification: the ReLU applied to the reverse signal itself
    filtering (conv)       <->  filtering with the transposed filters: the same filters flipped
                                vertically and horizontally, input and output channels swapped,
                                applied as an ordinary (forward) convolution
    dense layer W          <->  W^T, a plain matrix product
    global average pooling <->  each map's signal spread evenly over its h x w positions
    flatten                <->  reshape back

Nothing here calls a layer's ``backward`` or the col2im path of the gradient: the equivalence table
(tools/equivalence.py) compares this reverse network, layer by layer, with the gradient rule, and
the comparison only means something because the two are separate code (Simonyan et al. 2013,
sec. 4, show they agree everywhere except at the ReLU).

The switches and every layer's input shape are read from a PassRecord of the forward pass
(``rec.cache(name)``, ``rec.output(name)``), so one forward pass serves any number of reverse passes.
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError
from minicnn.kernels.conv import conv2d_forward
from minicnn.layers.pool import MaxPool2D
from minicnn.layers.reshape import Flatten
from minicnn.layers.softmax import Softmax
from minicnn.tools.targets import as_batch, forward_record, one_hot, resolve_targets


def unpool(signal, switches, input_shape, kernel, stride):
    """Unpooling (Zeiler & Fergus 2013, sec. 2.1): put each pooled signal back at its switch.

    signal: (N, C, Ho, Wo); switches: int (N, C, Ho, Wo), the index ky * kw + kx of the maximum
    inside the window of output (i, j), i.e. input position (i * sh + ky, j * sw + kx);
    input_shape: (N, C, H, W) of the pooled layer's input. Returns (N, C, H, W) of signal's dtype:
    zero except at switches. Where windows overlap (stride < kernel), two switches can land on one
    position; their signals add up (the position is the maximum of both windows).
    """
    xp = get_xp(signal)
    n, c, h, w = input_shape
    _, _, ho, wo = signal.shape
    kh, kw = kernel
    sh, sw = stride
    switches = xp.asarray(switches).astype(xp.int64)
    rows = xp.arange(ho)[:, None] * sh + switches // kw  # (N, C, Ho, Wo) by broadcasting
    cols = xp.arange(wo)[None, :] * sw + switches % kw
    maps = (xp.arange(n)[:, None] * c + xp.arange(c)[None, :])[:, :, None, None]  # which (n, c) map
    flat = (maps * h + rows) * w + cols
    # bincount sums the signals that land on the same position, on either device
    out = xp.bincount(flat.ravel(), weights=signal.ravel().astype(xp.float64), minlength=n * c * h * w)
    return out.astype(signal.dtype).reshape(n, c, h, w)


def rectify(signal):
    """Rectification (Zeiler & Fergus 2013, sec. 2.1): max(R, 0) on the reverse signal, any shape.

    The forward pass's own mask is NOT used: this is where DeconvNet and gradient differ."""
    return get_xp(signal).maximum(signal, 0)


def transposed_filters(weight):
    """weight (O, C, kh, kw) -> (C, O, kh, kw): every filter flipped vertically and horizontally,
    input and output channels swapped (Zeiler & Fergus's "transposed versions of the same filters")."""
    return get_xp(weight).ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))


def filter_transposed(signal, weight, stride: int, padding: int, input_shape):
    """Filtering with the transposed filters: signal (N, O, Ho, Wo) -> (N, C, H, W) = input_shape.

    The forward layer read input (y * s - p + u, x * s - p + v) with weight (u, v); the reverse
    stage is a forward convolution of the signal, spread back to the forward grid (s - 1 zeros
    between signals) and padded by k - 1 on every side, with the transposed filters. That "full"
    convolution covers the padded input (H + 2p, W + 2p); the forward padding is then cut off.
    Rows and columns the forward windows never reached (when (H + 2p - kh) % s != 0) get zeros.
    """
    xp = get_xp(signal)
    n, o, ho, wo = signal.shape
    _, c, h, w = input_shape
    kh, kw = weight.shape[2:]
    hp, wp = h + 2 * padding, w + 2 * padding
    # the signal on the padded input's grid, plus k - 1 zeros on each side for the full convolution
    spread = xp.zeros((n, o, hp + kh - 1, wp + kw - 1), dtype=signal.dtype)
    rows = slice(kh - 1, kh - 1 + (ho - 1) * stride + 1, stride)
    cols = slice(kw - 1, kw - 1 + (wo - 1) * stride + 1, stride)
    spread[:, :, rows, cols] = signal
    bias = xp.zeros(c, dtype=signal.dtype)
    # im2col's forward convolution: never the Winograd transposed kernel or col2im of the gradient
    full, _ = conv2d_forward(spread, transposed_filters(weight), bias, 1, 0, algorithm="im2col")
    return xp.ascontiguousarray(full[:, :, padding : padding + h, padding : padding + w])


def dense_transposed(signal, weight):
    """W^T R for a dense layer y = W x + b: signal (N, out) -> (N, in), one product per image,
    written as the paper's W^T R on column vectors: (W^T @ R^T)^T."""
    return (weight.T @ signal.T).T


def spread_average(signal, input_shape):
    """The reverse of global average pooling: signal (N, C) -> (N, C, H, W), each map's value / (H W)."""
    xp = get_xp(signal)
    n, c, h, w = input_shape
    return xp.repeat(signal / (h * w), h * w, axis=1).reshape(n, c, h, w)


def reverse_layer(layer, signal, record):
    """One reverse stage: the DeconvNet signal at ``layer``'s output -> the signal at its input.

    record: the PassRecord of the forward pass (switches from ``record.cache``, the input shape from
    the previous layer's output). Returns an array shaped like the layer's input.
    """
    shape = input_shape(layer, record)
    if isinstance(layer, MaxPool2D):
        window = layer.window()
        return unpool(signal, record.cache(layer.name).switches, shape, window.kernel, window.stride)
    if layer.is_rectifier:
        return rectify(signal)
    if layer.is_convolution:
        window = layer.window()
        return filter_transposed(signal, layer.weight, window.stride[0], window.padding[0], shape)
    if layer.is_linear:
        return dense_transposed(signal, layer.weight)
    if layer.is_global_pool:
        return spread_average(signal, shape)
    if isinstance(layer, Flatten):
        return signal.reshape(shape)
    if layer.is_identity_at_inference:
        return signal
    if isinstance(layer, Softmax):
        # Zeiler & Fergus start below the softmax; a network that ends in one gets its Jacobian
        # transpose, y * (R - sum_k R_k y_k), so that a class score still means the same thing
        y = record.output(layer.name)
        return y * (signal - (signal * y).sum(axis=1, keepdims=True))
    raise MinicnnError(f"the DeconvNet has no reverse stage for layer {layer.name} ({layer.kind})")


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
