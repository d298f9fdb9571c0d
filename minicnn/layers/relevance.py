"""How a linear layer applies an LRP rule (the rules are named in minicnn/rules.py).

A linear layer z = J(W) x + b (convolution, dense layer, BatchNorm at inference; the poolings and
the residual sum with their fixed weights) hands ``relevance`` its recorded input x and output z,
the relevance R of its outputs, and two functions of its own:

    forward(x', W', b')  -> z'             the layer's forward with modified inputs and parameters
    transpose(g, W')     -> J(W')^T g      its input gradient with modified parameters

and every rule is then the gradient trick of Zennit and Captum, R_in = sum_k x_k * J(W_k)^T
(R / s(z_k)), one term per (input, parameter) modification of the rule's table in
minicnn/rules.py. Parameter-free layers (W None) take the z-rule with the rule's stabiliser
whatever the rule (Zennit's Norm), since their weights are fixed and positive.

Modified weights (W+, W-, W + gamma W+, W^2, ones) are built for one backward and dropped: they
never enter a layer's kernel cache (``transforms=None`` for them), so no memory is kept per rule.
"""

from __future__ import annotations

from minicnn.backend import get_xp
from minicnn.rules import AlphaBeta, Flat, Gamma, WSquare, ZBox, ZPlus


def stabilise(z, epsilon: float):
    """z + epsilon * sign(z), sign(0) = +1 (Zennit's ``stabilize``): z moved away from 0, same shape."""
    xp = get_xp(z)
    d = z + 0.0  # a new array in which -0.0 is +0.0 (IEEE), so that both zeros take +epsilon below
    d += xp.copysign(xp.asarray(epsilon, dtype=z.dtype), d)
    return d


def share(r, z, epsilon: float):
    """R / s(z): each output's relevance per unit of its value. epsilon 0 (LRP-0): R / z where
    z != 0, and 0 where z == 0 (an output of value 0 has no contributions to share R among)."""
    xp = get_xp(z)
    if epsilon:
        d = stabilise(z, epsilon)
        return xp.divide(r, d, out=d)
    nonzero = z != 0
    return xp.where(nonzero, r, 0) / xp.where(nonzero, z, 1)


def _pos(a):
    return get_xp(a).maximum(a, 0)


def _neg(a):
    return get_xp(a).minimum(a, 0)


def _bound(value, x):
    """low or high of ZBox as an array shaped like x: a float, or one value per channel (axis 1)."""
    xp = get_xp(x)
    v = xp.asarray(value, dtype=x.dtype)
    if v.ndim == 1:
        v = v.reshape((1, -1) + (1,) * (x.ndim - 2))
    return xp.broadcast_to(v, x.shape)


def relevance(rule, x, z, r, forward, transpose, weight=None, bias=None):
    """R_in (shaped like x) of a linear layer under LRP rule ``rule``.

    x: the layer's input (N, ...); z: its recorded output; r: the relevance of the outputs, shaped
    like z; forward, transpose: the layer's functions above (forward takes bias None as no bias);
    weight, bias: its parameters (None for a parameter-free layer). Arrays of one dtype, on one
    device.
    """
    eps = rule.stabilizer
    if weight is None or not isinstance(rule, (ZPlus, AlphaBeta, Gamma, Flat, WSquare, ZBox)):
        # LRP-0, epsilon, Norm: the recorded output is z, and the layer's own weights transpose
        return x * transpose(share(r, z, eps), weight)
    wp, wn = _pos(weight), _neg(weight)
    bp, bn = (None, None) if bias is None else (_pos(bias), _neg(bias))
    if isinstance(rule, ZPlus):
        return _two_sided(x, r, forward, transpose, wp, wn, bp, eps)
    if isinstance(rule, AlphaBeta):
        positive = _two_sided(x, r, forward, transpose, wp, wn, bp, eps)
        if not rule.beta:
            return rule.alpha * positive
        negative = _two_sided(x, r, forward, transpose, wn, wp, bn, eps)
        return rule.alpha * positive - rule.beta * negative
    if isinstance(rule, Gamma):
        up, down = weight + rule.gamma * wp, weight + rule.gamma * wn
        b_up = None if bias is None else bias + rule.gamma * bp
        b_down = None if bias is None else bias + rule.gamma * bn
        # outputs above 0 share by the favoured positive contributions, outputs below 0 by the
        # favoured negative ones; an output at exactly 0 passes nothing (Zennit's masks)
        return _two_sided(x, r, forward, transpose, up, down, b_up, eps, mask=z > 0) + _two_sided(
            x, r, forward, transpose, down, up, b_down, eps, mask=z < 0
        )
    if isinstance(rule, (Flat, WSquare)):
        xp = get_xp(x)
        w = xp.ones_like(weight) if isinstance(rule, Flat) else weight**2
        b = None if isinstance(rule, Flat) or bias is None else bias**2
        return transpose(share(r, forward(xp.ones_like(x), w, b), eps), w)
    # ZBox: z^B = z - (W+ l + b+) - (W- h + b-), Zennit's clamped parameters, biases included
    low, high = _bound(rule.low, x), _bound(rule.high, x)
    g = share(r, z - forward(low, wp, bp) - forward(high, wn, bn), eps)
    return x * transpose(g, weight) - low * transpose(g, wp) - high * transpose(g, wn)


def fixed_relevance(at, r, transpose):
    """R_in of a parameter-free linear layer (pooling by average): the z-rule x * J^T (R / s(z)),
    ``at`` a rules.LayerRule, ``transpose(g)`` the layer's own backward J^T g."""
    return relevance(at.rule, at.input, at.output, r, None, lambda g, _: transpose(g))


def _two_sided(x, r, forward, transpose, w_pos, w_neg, bias, eps, mask=None):
    """g = R / s(w_pos x+ + w_neg x- + bias) (times ``mask``), and x+ w_pos^T g + x- w_neg^T g.

    ZPlus is (W+, W-, b+); alpha-beta's negative part (W-, W+, b-); gamma's two halves take the
    gamma-modified weights. Where no input is negative (after a ReLU) the x- terms are zero and
    are skipped."""
    xpos = _pos(x)
    negative = bool((x < 0).any())
    z = forward(xpos, w_pos, bias)
    if negative:
        xneg = _neg(x)
        z = z + forward(xneg, w_neg, None)
    g = share(r, z, eps)
    if mask is not None:
        g = g * mask
    out = xpos * transpose(g, w_pos)
    return out + xneg * transpose(g, w_neg) if negative else out
