"""The LRP rules against naive loops over contributions, as the papers write them (float64).

A linear layer is written as a matrix M (out, in) and a bias b, found by probing it with unit
vectors; the contribution of input i to output j is z_ij = x_i M_ji, and each rule is the papers'
sum over contributions (Bach et al. 2015, eqs. 56-60; Montavon et al. 2017, sec. 4):

    epsilon      R_i = sum_j z_ij / (z_j + eps sign z_j) R_j
    z+           R_i = sum_j z_ij^+ / (sum_i z_ij^+ + b_j^+) R_j
    alpha-beta   R_i = sum_j (alpha z_ij^+ / (sum z^+ + b^+) - beta z_ij^- / (sum z^- + b^-)) R_j

minicnn computes the same rules from the layer's own forward and transposed passes with clamped
weights and inputs (minicnn/layers/relevance.py): a different code, so agreement means something.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import assert_close, biased

import minicnn as mc
from minicnn import rules


def tiny_net():
    """conv 2->3 (3x3, padding 1), ReLU, max-pool 2, flatten, dense 12->4, with biases."""
    layers = [
        mc.Conv2D(2, 3, 3, padding=1, name="conv"), mc.ReLU(name="relu"), mc.MaxPool2D(2, name="pool"),
        mc.Flatten(name="flat"), mc.Dense(12, 4, name="fc"),
    ]  # fmt: skip
    return biased(mc.Sequential(layers, seed=0), seed=1)


def as_matrix(layer, shape):
    """(M (out, in), b (out,)) of the linear layer on inputs of ``shape`` (no batch axis): loops."""
    size = int(np.prod(shape))
    zero = layer.forward(np.zeros((1, *shape)))[0].ravel()
    columns = []
    for i in range(size):
        e = np.zeros(size)
        e[i] = 1.0
        columns.append(layer.forward(e.reshape(1, *shape))[0].ravel() - zero)
    return np.stack(columns, axis=1), zero


def naive_layer(rule, x, m, b, r):
    """R_in (in,) of one image by the papers' contribution formulas, loops over i and j."""
    n_out, n_in = m.shape
    out = np.zeros(n_in)
    for j in range(n_out):
        z = [x[i] * m[j, i] for i in range(n_in)]
        if isinstance(rule, rules.Epsilon):
            total = sum(z) + b[j]
            denom = total + rule.epsilon * (1.0 if total >= 0 else -1.0)
            for i in range(n_in):
                out[i] += z[i] / denom * r[j]
            continue
        pos = sum(max(v, 0.0) for v in z) + max(b[j], 0.0)
        neg = sum(min(v, 0.0) for v in z) + min(b[j], 0.0)
        alpha, beta = (1.0, 0.0) if isinstance(rule, rules.ZPlus) else (rule.alpha, rule.beta)
        pos += rule.stabilizer * (1.0 if pos >= 0 else -1.0)
        neg += rule.stabilizer * (1.0 if neg >= 0 else -1.0)
        for i in range(n_in):
            out[i] += (alpha * max(z[i], 0.0) / pos - beta * min(z[i], 0.0) / neg) * r[j]
    return out


def naive_lrp(net, x, target, rule):
    """The whole tiny net by loops: dense and conv by contributions, ReLU passes, max-pool to the
    window's maximum, flatten the identity."""
    conv, _, pool, _, fc = net.layers
    a0 = x[0]
    a1 = conv.forward(x)[0][0]
    a2 = np.maximum(a1, 0)
    a3 = pool.forward(a2[None])[0][0]
    scores = fc.forward(a3.reshape(1, -1))[0][0]
    r = np.zeros(4)
    r[target] = scores[target]
    m, b = as_matrix(fc, (12,))
    r3 = naive_layer(rule, a3.ravel(), m, b, r).reshape(a3.shape)
    r2 = np.zeros_like(a2)
    for c in range(a3.shape[0]):
        for i in range(a3.shape[1]):
            for j in range(a3.shape[2]):
                window = a2[c, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
                u, v = np.unravel_index(np.argmax(window), window.shape)
                r2[c, 2 * i + u, 2 * j + v] += r3[c, i, j]
    m, b = as_matrix(conv, a0.shape)
    return naive_layer(rule, a0.ravel(), m, b, r2.ravel()).reshape(a0.shape)


@pytest.mark.parametrize(
    "rule",
    [rules.Epsilon(0.01), rules.ZPlus(), rules.AlphaBeta(2.0, 1.0), rules.AlphaBeta(1.0, 0.0)],
    ids=repr,
)
def test_rules_equal_the_papers_loops(rule):
    net = tiny_net()
    x = np.random.default_rng(2).standard_normal((1, 2, 4, 4))
    target = 1
    ours = mc.lrp(net, x, target=target, composite=rule)[0]
    assert_close(ours, naive_lrp(net, x, target, rule), rtol=1e-12, what=f"{rule!r} vs loops")


def test_zplus_and_alpha1_beta0_are_two_codes_for_one_rule():
    """z+ (W+ x+ + W- x- + b+) and alpha1-beta0 (the positive part of alpha-beta) agree, and
    both differ from epsilon: the comparison can fail."""
    net = tiny_net()
    x = np.random.default_rng(3).standard_normal((2, 2, 4, 4))
    zplus = mc.lrp(net, x, target=[0, 2], composite="zplus")
    ab = mc.lrp(net, x, target=[0, 2], composite="alpha1beta0")
    assert_close(zplus, ab, rtol=1e-13, what="z+ vs alpha1-beta0")
    eps = mc.lrp(net, x, target=[0, 2], composite="epsilon")
    assert np.abs(eps - zplus).max() > 1e-3 * np.abs(zplus).max()
