"""Sixt et al.'s convergence measure, per layer: how alike the maps of two classes become.

Sixt, Granz & Landgraf (2020, "When Explanations Lie: Why Many Modified BP Attributions Fail",
sec. 4) show that modified backpropagation rules (DeconvNet, guided backpropagation, LRP-z+,
alpha-beta, ...) send the signal of any class toward one class-insensitive map as it goes down the
network: the cosine similarity of the backward signals of two classes rises toward 1 with depth,
while the gradient's stays class-dependent. Measured here for each rule at the output of every layer
the score reaches and at the image: the cosine of the signals sent down from the target class and
from the runner-up class (the next-highest score), the mean over the images of the batch.

A measurement, not an equality: rows have no bound. The gradient column is the reference the
theory contrasts the modified rules with.
"""

from __future__ import annotations

import numpy as np

from minicnn.backend import to_numpy
from minicnn.record import INPUT
from minicnn.rules import COMPOSITES, MODES, assign, layer_backward
from minicnn.tools.deconvnet import walk
from minicnn.tools.equivalence_section import Row, Section, cosine
from minicnn.tools.targets import one_hot

#: the rules measured: the engine's three named rules and two LRP composites of rules.COMPOSITES
#: (z+ and alpha2-beta1, the modified rules Sixt et al. find converging), by name
RULES = (*MODES, "zplus", "alpha2beta1")


def rule_stage(rule: str, net, record):
    """``stage(layer, signal) -> signal below`` under ``rule`` for ``walk``: a named mode as it is,
    an LRP composite as ``rules.assign`` gives each layer its rule from the record."""
    if rule in MODES:
        modes = dict.fromkeys(record.names, rule)
    else:
        assigned = assign(COMPOSITES[rule](), [net[name] for name in record.names], record)
        modes = dict(zip(record.names, assigned))

    def stage(layer, signal):
        return layer_backward(layer, signal, record.cache(layer.name), modes[layer.name])[0]

    return stage


def runner_up(scores, targets) -> np.ndarray:
    """(N,) the class with the highest score other than each image's target."""
    s = np.array(to_numpy(scores), dtype=np.float64)
    s[np.arange(len(s)), np.asarray(targets)] = -np.inf
    return s.argmax(axis=1)


def cosines(net, record, dy_a, dy_b, rule: str) -> dict:
    """{layer name or INPUT: mean over images of cos(signal of class a, signal of class b)} for the
    backward pass under ``rule`` (each layer's backward, walked down by ``walk``)."""
    stage = rule_stage(rule, net, record)
    out = {}
    for (name, a), (_, b) in zip(walk(net, record, dy_a, stage), walk(net, record, dy_b, stage)):
        if a is not None:
            out[name] = float(np.mean([cosine(a[i], b[i]) for i in range(len(a))]))
    return out


def convergence_section(setting) -> Section:
    """A row per layer output the score reaches, top first, and the image last: the cosine of the
    two classes' signals under each rule (``numbers``: "cos <rule>")."""
    net, rec = setting.net, setting.record
    scores = rec.output()
    if scores.shape[1] < 2:
        return Section(
            "convergence", "class-insensitivity with depth (Sixt et al. 2020)", "", [], [], ["one class only"]
        )
    other = runner_up(scores, setting.targets)
    dy_b = one_hot(other, scores)
    by_rule = {rule: cosines(net, rec, setting.dy, dy_b, rule) for rule in RULES}
    rows = []
    for name in by_rule[RULES[0]]:
        numbers = {f"cos {rule}": by_rule[rule][name] for rule in RULES}
        rows.append(
            Row(
                "image" if name == INPUT else name,
                "target class",
                "runner-up class",
                None,
                None,
                numbers=numbers,
            )
        )
    theorem = (
        "modified backprop rules converge to a class-insensitive map with depth: the cosine of two "
        "classes' signals tends to 1 toward the input, the gradient's does not (Sixt et al. 2020, sec. 4)"
    )
    notes = [
        f"classes: target {', '.join(map(str, np.asarray(setting.targets).tolist()))} vs runner-up "
        f"{', '.join(map(str, other.tolist()))}; cosine per image, mean over the batch"
    ]
    return Section(
        "convergence", "class-insensitivity with depth (Sixt et al. 2020)", theorem, [], rows, notes
    )
