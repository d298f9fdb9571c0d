"""Flatten: (N, C, H, W) -> (N, C*H*W), a change of shape only."""

from __future__ import annotations

from minicnn.layers.base import Layer


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in (C, H, W) order (NCHW memory order; Keras uses (H, W, C))."""

    kind = "Flatten"
    equivalence_row = ("reshape", "reshape back", "reshape back")

    def output_shape(self, shape):
        size = 1
        for d in shape:
            size *= d
        return (size,)

    def window(self):
        return None  # each output is one input, but the spatial layout is gone

    def forward(self, x, train=False, rng=None):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dy, cache, need_params=False):
        return dy.reshape(cache), None

    def reverse(self, signal, cache, input_shape):
        return signal.reshape(input_shape)

    def torch_module(self, nn):
        return nn.Flatten()  # (C, H, W) order in both frameworks

    def keras_layers(self, keras, input_shape):
        # Keras flattens channels-last input in (H, W, C) order: put the channels first
        first = [keras.layers.Permute((3, 1, 2))] if len(input_shape) == 3 else []
        return first + [keras.layers.Flatten()], {}
