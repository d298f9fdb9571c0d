"""Excitation backprop (Zhang, Lin, Brandt, Shen & Sclaroff 2016, "Top-down neural attention by
excitation backprop", sec. 3).

A top-down signal is a probability distribution over the units of a layer, passed down as a
Markov chain whose transition from a unit a_j to a unit a_i below it is proportional to the
excitation a_i w+_ij that a_i sends to a_j (w+ = max(w, 0); biases take no part). The marginal
winning probability of a_i is (sec. 3.2, eq. 6-7):

    P(a_i) = sum_j P(a_j) a_i w+_ij / Z_j,      Z_j = sum_i' a_i' w+_i'j

starting from P = 1 at the target class's score (a one-hot). Per layer, written with the layer's
own forward and backward (one layer's code, never the LRP rules of the layers):

    layer with weights (Conv2D, Dense):  its positive twin T (weight w+, bias 0):
                                          P_in = a * T.backward(P_out / T.forward(a))
    layer without weights:               the same with the layer itself, whose forward is
                                          positively homogeneous with a nonnegative Jacobian:
        ReLU         P passes unchanged where a > 0 (sec. 3.2: the ReLU only selects)
        max pooling  the winner takes P (the unit the forward pass picked)
        average and global average pooling, Flatten, Dropout: the weights 1/k (or 1) of eq. 6

Z_j = 0 gives no transition (that unit's P goes nowhere: it had no excitatory input). The sum of P
is kept from layer to layer (each unit's P is split over its inputs) where every Z_j > 0 and every
input is >= 0, as behind a ReLU; a unit that its bias alone switches on has Z_j = 0 and loses its
P, so on a network with biases the sum falls below 1 (without biases it stays 1).
Zhang et al. assume nonnegative inputs; at the first layer, whose inputs are pixels in
network-input space and may be negative, the formula is applied as written (a_i w+_ij), so P may
be negative there; ``layer=`` stops at an inner layer, as the paper's maps do.

Contrastive excitation backprop (sec. 3.3): the target unit's dual has the negated weights; its
winning probabilities at the top layer's input use (-w)+ = max(-w, 0), and the difference of the
two distributions there is passed down (the rule is linear in P), giving P(target) - P(dual) at the
chosen layer (signed; Zhang et al. show its positive part). It needs a top layer with weights.

Montavon et al. (2017, sec. 4) show that on layers with nonnegative inputs this is the z+ rule of
layer-wise relevance propagation (= alpha1-beta0) applied to a relevance that starts at 1.
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.errors import MinicnnError
from minicnn.record import INPUT
from minicnn.rules import layer_backward
from minicnn.tools.targets import as_batch, forward_record, one_hot, resolve_targets


def positive_twin(layer, sign: int = 1):
    """A copy of ``layer`` with weight max(sign * w, 0) and bias 0 (Zhang et al.'s w+; sign -1:
    the dual unit's (-w)+). Layers whose parameters are not exactly a weight and a bias (a BatchNorm,
    whose running statistics shift its output) are refused in one line."""
    params = layer.params
    if set(params) != {"weight", "bias"}:
        raise layer.error(
            f"excitation backprop takes layers with a weight and a bias, not parameters {sorted(params)}: "
            "fold it into the convolution before it"
        )
    xp = get_xp(params["weight"])
    twin = type(layer)(**layer.config(), name=layer.name)
    if hasattr(twin, "algorithm"):
        # A lowering where each output is its own dot product, so a window of zero inputs gives Z_j
        # exactly 0: Winograd's tile transforms leave +-1e-16 there, which P / Z_j would blow up.
        twin.algorithm = "im2col"
    twin.weight = xp.maximum(sign * params["weight"], 0)
    twin.bias = xp.zeros_like(params["bias"])
    return twin


def _safe_ratio(p, z):
    """p / z where z != 0, else 0: a unit without excitatory input passes nothing down."""
    xp = get_xp(p)
    nonzero = z != 0
    return xp.where(nonzero, p / xp.where(nonzero, z, 1), 0)


def excite(layer, a, p, sign: int = 1):
    """One layer's step of eq. 6: the winning probabilities of its input (shaped like a, (N, ...))
    from those of its output p. a: the layer's input in this pass. sign -1: through (-w)+."""
    stage = positive_twin(layer, sign) if layer.has_params else layer
    z, cache = stage.forward(a)
    g, _ = layer_backward(stage, _safe_ratio(p, z), cache, "gradient")
    return a * g


def excitation_backprop(net, x, target="predicted", layer: str | None = None, contrastive: bool = False,
                        record=None):  # fmt: skip
    """Marginal winning probabilities (Zhang et al. 2016, eq. 6-7) of the target classes.

    Args:
        net: a Sequential (a chain) of convolutions, dense layers, ReLUs, max/average/global
            average pooling, Flatten and Dropout, ending in class scores (a final Softmax is passed).
        x: images (N, C, H, W) in network-input space, or one (C, H, W) image.
        target: class index, list of N indices, or "predicted" (argmax of the scores).
        layer: return the probabilities at this layer's output (e.g. "block2_pool"); None: at the
            input, (N, C, H, W) (sum over C for one map per pixel).
        contrastive: contrastive excitation backprop (sec. 3.3): P(target) - P(dual unit).
        record: the PassRecord of a full forward pass over x already run by the caller (reused).

    Returns:
        array of net.dtype shaped like the chosen layer's output (default: like x). Without
        ``contrastive``, each image's entries sum to 1 where the module docstring's conditions hold
        (nonnegative inputs, every Z_j > 0); with it, to 0.
    """
    net.require_chain("excitation backprop")
    x = as_batch(net, x)
    rec = forward_record(net, x, record)
    names = net.names
    stop = 0 if layer is None else net.index(layer) + 1
    top = len(names) - 1
    while top >= 0 and net.layers[top].is_probability:  # P starts at the scores, below a Softmax
        top -= 1
    if top < stop:
        raise MinicnnError(f"excitation backprop starts at the class scores; {layer!r} is not below them")
    scores = rec.output(names[top])
    p = one_hot(resolve_targets(target, scores), scores)
    for i in range(top, stop - 1, -1):
        current = net.layers[i]
        (source,) = net.inputs[current.name]
        a = x if source == INPUT else rec.output(source)
        if contrastive and i == top:
            if not current.has_params:
                raise current.error("contrastive excitation backprop needs a top layer with weights")
            p = excite(current, a, p) - excite(current, a, p, sign=-1)
        else:
            p = excite(current, a, p)
    return p
