"""Elementwise sum of two or more inputs: where the branches of a residual block meet.

    y = x_1 + x_2 + ... + x_k          every x_i (N, C, H, W) of one shape

Residual networks (He et al. 2016, fig. 2) add a block's input (or its projection) to the block's
output. This is the one layer with several inputs (``several_inputs``): ``forward`` takes a tuple
of arrays and ``output_shape`` a tuple of shapes; ``backward`` and ``reverse`` return a tuple,
one signal per input, in the order of the inputs. A graph network (minicnn/graph.py) gives it the
tuple and adds each returned signal to the branch it came from.

The sum is linear with Jacobian [I, I, ..., I], so its backward copies the signal to every input,
the same under every backward rule; the DeconvNet reverse stage is that transposed map too (the
signal sent down each branch), written apart from ``backward`` as ``copy_to_inputs``. Under an
LRP rule the sum splits the relevance among its inputs in proportion to their values (``backward``).
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.kernels.add import add
from minicnn.layers.base import Layer
from minicnn.layers.relevance import share


def copy_to_inputs(signal, count: int) -> tuple:
    """The transposed sum: the signal (N, ...) at the output -> ``count`` copies, one per input."""
    xp = get_xp(signal)
    return tuple(xp.array(signal, copy=True) for _ in range(count))


class Add(Layer):
    """y = sum of the inputs; inputs: a tuple of k >= 2 arrays of one shape (N, ...)."""

    kind = "Add"
    several_inputs = True
    reads_rule = True  # LRP: each input's share of the sum (below); every other rule copies
    fuses_rectifier = True  # the ReLU after a residual block's sum, in the same pass
    equivalence_row = ("X_1 + X_2", "R to each X_i", "dX to each X_i")

    def output_shape(self, shapes):
        shapes = [tuple(s) for s in shapes]
        if len(shapes) < 2:
            raise self.error(f"adds two or more inputs, got {len(shapes)}")
        if any(s != shapes[0] for s in shapes):
            listed = " + ".join("(N, " + ", ".join(map(str, s)) + ")" for s in shapes)
            raise self.error(f"inputs of different shapes do not add: {listed}")
        return shapes[0]

    def forward(self, xs, train=False, rng=None, rectify=False):
        self.output_shape([x.shape[1:] for x in xs])
        y = add(xs, rectify)  # a new array, ((x_1 + x_2) + x_3) + ...; max(y, 0) where rectify
        return y, len(xs)  # the cache: how many inputs receive the signal

    def backward(self, dy, cache, mode="gradient", need_params=False):
        if not isinstance(mode, str):
            # LRP (Zennit's Norm at its Sum): input i receives x_i * R / s(x_1 + ... + x_k), its
            # share of the sum, s the stabiliser of minicnn/rules.py; the shares add up to R
            # up to the stabiliser. DeepLIFT never reaches here (the sum takes its gradient).
            g = share(dy, mode.output, mode.rule.stabilizer)
            return tuple(x * g for x in mode.input), None
        # d(x_1 + ... + x_k)/dx_i = I: every input receives dy itself (callers never write into it)
        return tuple(dy for _ in range(cache)), None

    def reverse(self, signal, cache, input_shape):
        return copy_to_inputs(signal, cache)

    def torch_module(self, nn):
        class Sum(nn.Module):
            """The sum of the module's positional inputs."""

            def forward(self, *xs):
                if len(xs) < 2:  # a chain's mirror hands it one tensor: refuse, never pass it on
                    raise ValueError("Add sums two or more inputs: run it in a graph, not a chain")
                y = xs[0]
                for x in xs[1:]:
                    y = y + x
                return y

        return Sum()

    def keras_layers(self, keras, input_shape):
        return [keras.layers.Add()], {}
