"""Average pooling: each output is the mean of a window, fixed (AvgPool2D) or fitted to the input
(AdaptiveAvgPool2D, torchvision VGG's ``avgpool``).

    y[n, c, i, j] = (1 / count[i, j]) * sum_{u < kh, v < kw} x_pad[n, c, i*s + u, j*s + v]

Backward spreads each dy evenly over its window, dx_pad[.., i*s + u, j*s + v] += dy[.., i, j] /
count[i, j]. Average pooling has no switch and no rectification, so the gradient, DeconvNet
(Zeiler & Fergus 2013) and guided backpropagation (Springenberg et al. 2015) rules are this same
spread, and no backward rule changes these layers.

The DeconvNet reverse stage is the same spread computed another way, as the transpose of a linear
map: both poolings are separable, y = A_h x A_w^T for each (n, c) map, with an averaging matrix per
axis (``averaging_matrix``: row i holds 1 / d_i on the inputs window i reads), since a window is a
rectangle and its divisor is a product (kh * kw, or the real rows times the real columns it
covers). The reverse stage is A_h^T R A_w, Zeiler & Fergus's "transposed filters" for a filter
that averages.

NOTE count_include_pad: with padding p > 0, torch.nn.AvgPool2d divides by kh * kw whatever the
window covers (count_include_pad=True, its default), ONNX AveragePool by the number of real,
unpadded inputs in the window (count_include_pad=0, its default). Both are supported; ceil_mode is
not (the output size is always floor((H + 2p - k) / s) + 1, as in minicnn.geometry.output_size).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.backend import get_xp
from minicnn.geometry import Window, output_size
from minicnn.layers.base import Layer
from minicnn.layers.relevance import fixed_relevance


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


class AvgCache(NamedTuple):
    input_shape: tuple  # (N, C, H, W)
    count: object  # (Ho, Wo) divisor of each output, or a Python number


def window_sums(x, kernel, stride, padding, out_hw):
    """x (N, C, H, W) -> (N, C, Ho, Wo): the sum of each zero-padded kh x kw window."""
    xp = get_xp(x)
    ph, pw = padding
    xpad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    y = xp.zeros((x.shape[0], x.shape[1], *out_hw), dtype=x.dtype)
    for rows, cols in _taps(kernel, stride, out_hw):
        y += xpad[:, :, rows, cols]
    return y


def averaging_matrix(windows, size: int, divisors, dtype=np.float64) -> np.ndarray:
    """(len(windows), size): row i holds 1 / divisors[i] on columns [start, stop) of windows[i]
    (clipped to [0, size)) and 0 elsewhere, so that A @ v averages v over each window (NumPy)."""
    a = np.zeros((len(windows), size), dtype=dtype)
    for i, ((start, stop), d) in enumerate(zip(windows, divisors)):
        a[i, max(start, 0) : min(stop, size)] = 1.0 / d
    return a


def transpose_average(signal, a_rows, a_cols, input_shape):
    """The transpose of y = A_h x A_w^T: signal (N, C, Ho, Wo) -> A_h^T R A_w, (N, C, H, W) =
    input_shape; a_rows (Ho, H), a_cols (Wo, W) from averaging_matrix."""
    xp = get_xp(signal)
    a_rows, a_cols = (xp.asarray(a, dtype=signal.dtype) for a in (a_rows, a_cols))
    return xp.ascontiguousarray((a_rows.T @ signal @ a_cols).reshape(input_shape))


def _taps(kernel, stride, out_hw):
    """(u, v, rows, cols): for each kernel offset, the strided slices of the padded input that it
    adds to the outputs (kh * kw vectorised adds instead of a loop over outputs)."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    for u in range(kh):
        for v in range(kw):
            yield slice(u, u + sh * (ho - 1) + 1, sh), slice(v, v + sw * (wo - 1) + 1, sw)


class AvgPool2D(Layer):
    """Mean over kh x kw windows with stride and zero padding; (N, C, H, W) -> (N, C, Ho, Wo).

    count_include_pad: True divides by kh * kw (torch's default), False by the number of unpadded
    inputs in each window (ONNX's default); the two differ only at the border when padding > 0.
    """

    kind = "AvgPool2D"
    is_pooling = True
    reads_rule = True  # LRP rules: the z-rule of its fixed weights (minicnn/layers/relevance.py)
    equivalence_row = ("mean of window", "A^T R", "dX / k spread")  # A: the averaging, separable

    def __init__(self, kernel_size=2, stride=None, padding=0, count_include_pad=True, name=None):
        super().__init__(name)
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else self.kernel_size)
        self.padding = _pair(padding)
        self.count_include_pad = bool(count_include_pad)
        if min(*self.kernel_size, *self.stride) < 1 or min(self.padding) < 0:
            raise self.error("kernel size and stride must be positive, padding >= 0")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise self.error("padding must be at most half the kernel size (a window of padding only)")

    def config(self):
        return {
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "count_include_pad": self.count_include_pad,
        }

    def window(self):
        if not self.count_include_pad and any(self.padding):
            # The divisor depends on where the border is, which a crop of the input no longer
            # knows: say "reads everything" so that incremental tools recompute this layer in full.
            return None
        return Window(self.kernel_size, self.stride, self.padding)

    def output_shape(self, shape):
        self.check_rank(shape, 3, "(N, C, H, W)")
        c, h, w = shape
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if h + 2 * ph < kh or w + 2 * pw < kw:
            raise self.error(f"input {h}x{w} is smaller than the {kh}x{kw} pooling window")
        return (
            c,
            output_size(h, kh, self.stride[0], ph),
            output_size(w, kw, self.stride[1], pw),
        )

    def _count(self, xp, h, w, out_hw, dtype):
        """The divisor: kh * kw, or (Ho, Wo) counts of the real inputs under each window."""
        if self.count_include_pad or not any(self.padding):
            return self.kernel_size[0] * self.kernel_size[1]
        (ph, pw) = self.padding
        ones = xp.pad(xp.ones((h, w), dtype=dtype), ((ph, ph), (pw, pw)))
        count = xp.zeros(out_hw, dtype=dtype)
        for rows, cols in _taps(self.kernel_size, self.stride, out_hw):
            count += ones[rows, cols]
        return count

    def forward(self, x, train=False, rng=None):
        _, ho, wo = self.output_shape(x.shape[1:])
        count = self._count(get_xp(x), x.shape[2], x.shape[3], (ho, wo), x.dtype)
        y = window_sums(x, self.kernel_size, self.stride, self.padding, (ho, wo))
        return y / count, AvgCache(tuple(x.shape), count)

    def forward_padded(self, x):
        # The crop already carries the zero padding (asked only when the divisor is kh * kw, see
        # window()): pool it unpadded with the same divisor.
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        out_hw = (output_size(x.shape[2], kh, sh, 0), output_size(x.shape[3], kw, sw, 0))
        return window_sums(x, self.kernel_size, self.stride, (0, 0), out_hw) / (kh * kw)

    def backward(self, dy, cache, mode="gradient", need_params=False):
        if not isinstance(mode, str):  # an LRP rule: the z-rule through this backward
            return fixed_relevance(mode, dy, lambda g: self.backward(g, cache)[0]), None
        xp = get_xp(dy)
        n, c, h, w = cache.input_shape
        ph, pw = self.padding
        share = dy / cache.count
        dxp = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dy.dtype)
        for rows, cols in _taps(self.kernel_size, self.stride, dy.shape[2:]):
            dxp[:, :, rows, cols] += share
        return xp.ascontiguousarray(dxp[:, :, ph : ph + h, pw : pw + w]), None

    def averaging_matrices(self, h: int, w: int):
        """(A_h (Ho, H), A_w (Wo, W)): this pooling of an h x w map is A_h x A_w^T (float64 NumPy).
        Window i along an axis reads padded positions [i s, i s + k), input rows [i s - p, i s - p
        + k); its divisor is k (count_include_pad) or the number of those rows inside the input."""
        matrices = []
        for size, k, s, p in zip((h, w), self.kernel_size, self.stride, self.padding):
            windows = [(i * s - p, i * s - p + k) for i in range(output_size(size, k, s, p))]
            real = [min(stop, size) - max(start, 0) for start, stop in windows]
            divisors = [k] * len(windows) if self.count_include_pad else real
            matrices.append(averaging_matrix(windows, size, divisors))
        return tuple(matrices)

    def reverse(self, signal, cache, input_shape):
        return transpose_average(signal, *self.averaging_matrices(*input_shape[2:]), input_shape)

    def torch_module(self, nn):
        return nn.AvgPool2d(
            self.kernel_size, self.stride, self.padding, count_include_pad=self.count_include_pad
        )

    def keras_layers(self, keras, input_shape):
        if any(self.padding) and not self.count_include_pad:
            raise self.error("Keras has no average pool that skips the padding")
        # torch's default, count_include_pad: explicit zero padding, then a 'valid' average pool
        pad = [keras.layers.ZeroPadding2D(self.padding)] if any(self.padding) else []
        pool = keras.layers.AveragePooling2D(self.kernel_size, strides=self.stride, padding="valid")
        return pad + [pool], {}


def adaptive_bounds(size: int, out: int) -> list[tuple[int, int]]:
    """The windows of adaptive pooling along one axis: output i reads [floor(i * size / out),
    ceil((i + 1) * size / out)), torch's AdaptiveAvgPool2d rule; equal windows when out divides size."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


class AdaptiveAvgPool2D(Layer):
    """Average pooling to a fixed output size whatever the input size: (N, C, H, W) -> (N, C, oh, ow).

    Output (i, j) is the mean of rows adaptive_bounds(H, oh)[i] and columns adaptive_bounds(W, ow)[j]
    (torchvision's VGG ``avgpool`` is AdaptiveAvgPool2d((7, 7)): the identity at 224 x 224 input,
    a 2 x 2 mean at 448, overlapping windows when 7 does not divide the map size).
    """

    kind = "AdaptiveAvgPool2D"
    is_pooling = True
    reads_rule = True  # LRP rules: the z-rule of its fixed weights (minicnn/layers/relevance.py)
    equivalence_row = ("adaptive mean", "A^T R", "dX/area spread")  # A: the averaging, separable

    def __init__(self, output_size=7, name=None):
        super().__init__(name)
        self.output_size = _pair(output_size)
        if min(self.output_size) < 1:
            raise self.error("output size must be positive")

    def config(self):
        return {"output_size": list(self.output_size)}

    def window(self):
        return None  # the window depends on the input size: tools treat it as reading everything

    def output_shape(self, shape):
        self.check_rank(shape, 3, "(N, C, H, W)")
        return (shape[0], *self.output_size)

    def forward(self, x, train=False, rng=None):
        self.output_shape(x.shape[1:])
        xp = get_xp(x)
        rows, cols = (
            adaptive_bounds(x.shape[2], self.output_size[0]),
            adaptive_bounds(x.shape[3], self.output_size[1]),
        )
        if x.shape[2:] == self.output_size:  # every window is one pixel
            return x.copy(), tuple(x.shape)
        y = xp.empty((x.shape[0], x.shape[1], *self.output_size), dtype=x.dtype)
        for i, (r0, r1) in enumerate(rows):
            for j, (c0, c1) in enumerate(cols):
                y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
        return y, tuple(x.shape)

    def backward(self, dy, cache, mode="gradient", need_params=False):
        if not isinstance(mode, str):  # an LRP rule: the z-rule through this backward
            return fixed_relevance(mode, dy, lambda g: self.backward(g, cache)[0]), None
        xp = get_xp(dy)
        n, c, h, w = cache
        if (h, w) == self.output_size:
            return dy.copy(), None
        dx = xp.zeros(cache, dtype=dy.dtype)
        for i, (r0, r1) in enumerate(adaptive_bounds(h, self.output_size[0])):
            for j, (c0, c1) in enumerate(adaptive_bounds(w, self.output_size[1])):
                area = (r1 - r0) * (c1 - c0)
                dx[:, :, r0:r1, c0:c1] += (dy[:, :, i, j] / area)[:, :, None, None]
        return dx, None

    def averaging_matrices(self, h: int, w: int):
        """(A_h (oh, H), A_w (ow, W)): this pooling of an h x w map is A_h x A_w^T (float64 NumPy)."""
        matrices = []
        for size, out in zip((h, w), self.output_size):
            windows = adaptive_bounds(size, out)
            matrices.append(averaging_matrix(windows, size, [stop - start for start, stop in windows]))
        return tuple(matrices)

    def reverse(self, signal, cache, input_shape):
        return transpose_average(signal, *self.averaging_matrices(*input_shape[2:]), input_shape)

    def torch_module(self, nn):
        return nn.AdaptiveAvgPool2d(self.output_size)

    def keras_layers(self, keras, input_shape):
        # Keras has no adaptive pool: an ordinary one where the windows tile the map exactly
        h, w = input_shape[1:]
        (oh, ow) = self.output_size
        if h % oh or w % ow:
            raise self.error(f"Keras has no adaptive pool for {h}x{w} -> {oh}x{ow}")
        return [keras.layers.AveragePooling2D((h // oh, w // ow))], {}
