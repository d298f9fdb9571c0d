"""The conditions of the equivalence theorems, checked on a network by measurement, layer by layer.

The equalities of the suite hold under conditions on the network: its nonlinearities are ReLUs and
max-pools (LRP-0 = gradient x input, Ancona et al. 2018), it has no biases (DeepLIFT-Rescale with a
zero reference = epsilon-LRP; Integrated Gradients with a zero baseline = gradient x input), it is
positively homogeneous. Rather than read these from layer names, each layer is asked by running its
own forward pass on its recorded input X (the first image) and on a seeded random Z shaped like it:

    maps 0 to 0          f(0) = 0                    fails for a bias, a BatchNorm offset
    homogeneous          f(2 X) = 2 f(X)             fails for a bias, a sigmoid, a softmax
    additive             f(X + Z) + f(0) = f(X) + f(Z)   fails for every nonlinearity

A layer that is not additive must be a rectifier or a pooling layer (an additive average pool is
linear): that is the "ReLU and max-pool" condition. Each test compares with the bound of the dtype
(equivalence_section.BOUND), so float32 rounding is not taken for a bias.

``bias_free_copy`` builds the network that the bias conditions ask for: a copy with the parameters
named "bias" and the BatchNorm running means set to zero, so a section can show its equality holding
there beside the measured gap on the network as given.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from minicnn.backend import get_xp
from minicnn.record import INPUT
from minicnn.tools.equivalence_section import Condition, bound_for, gap

#: parameters that add an offset to a layer's output (Conv2D and Dense "bias"; BatchNorm2D's offset is
#: bias - weight * running_mean / sqrt(running_var + eps), zero when both are)
OFFSET_PARAMETERS = ("bias", "running_mean")


@dataclass
class LayerFacts:
    """What one layer's forward pass does, measured on its recorded input (see the module doc)."""

    name: str
    maps_zero_to_zero: bool
    homogeneous: bool
    additive: bool
    nonlinear_allowed: bool  # a rectifier or a pooling layer: may be non-additive under the theorems


def _inputs(layer, record, n: int = 1):
    """The layer's recorded inputs (first ``n`` images): a tuple, one per input of the layer."""
    sources = record.inputs[layer.name]
    return tuple((record.input if s == INPUT else record.output(s))[:n] for s in sources)


def layer_facts(net, record, seed: int = 0) -> list[LayerFacts]:
    """The facts of every layer of ``net``, measured on the first image of ``record``."""
    facts = []
    bound = bound_for(net.dtype)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        xs = _inputs(layer, record)
        xp = get_xp(xs[0])

        def run(args, layer=layer):
            return layer.forward(args if layer.several_inputs else args[0])[0]

        zs = tuple(xp.asarray(rng.standard_normal(x.shape) * float(x.std() or 1)).astype(x.dtype) for x in xs)
        fx, f0 = run(xs), run(tuple(xp.zeros_like(x) for x in xs))
        scale = float(xp.abs(fx).max()) or 1.0
        zero = float(xp.abs(f0).max()) / scale <= bound
        homogeneous = gap(run(tuple(2 * x for x in xs)), 2 * fx) <= bound
        additive = gap(run(tuple(x + z for x, z in zip(xs, zs))) + f0, fx + run(zs)) <= 10 * bound
        allowed = layer.is_rectifier or layer.is_pooling
        facts.append(LayerFacts(layer.name, zero, homogeneous, additive, allowed))
    return facts


def _names(items, limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def relu_maxpool(facts) -> Condition:
    """Every nonlinear layer is a rectifier or a pooling layer."""
    bad = [f.name for f in facts if not f.additive and not f.nonlinear_allowed]
    detail = f"nonlinear layers other than ReLU / max-pool: {_names(bad)}" if bad else "measured per layer"
    return Condition("ReLU and max-pool nonlinearities", not bad, detail)


def no_biases(facts) -> Condition:
    """Every layer maps 0 to 0."""
    bad = [f.name for f in facts if not f.maps_zero_to_zero]
    detail = (
        f"{len(bad)} of {len(facts)} layers map 0 to a nonzero output: {_names(bad)}"
        if bad
        else "f(0) = 0 at every layer"
    )
    return Condition("no biases", not bad, detail)


def homogeneous(facts) -> Condition:
    """Every layer is positively homogeneous of degree 1 at its recorded input."""
    bad = [f.name for f in facts if not f.homogeneous]
    detail = f"f(2X) != 2 f(X) at {_names(bad)}" if bad else "f(2X) = 2 f(X) at every layer"
    return Condition("positively homogeneous", not bad, detail)


def bias_free_copy(net):
    """A copy of ``net`` with every offset parameter (OFFSET_PARAMETERS) set to zero; ``net`` is
    unchanged. Whether the copy really maps 0 to 0 is measured by ``layer_facts``, not assumed."""
    twin = copy.deepcopy(net)
    for layer, key, value in list(twin.parameters()):
        if key in OFFSET_PARAMETERS:
            setattr(layer, key, get_xp(value).zeros_like(value))
    twin.last = None
    return twin


class Setting:
    """What every section builder reads: the network, the record of one forward pass over the
    batch, the target classes (N,), the one-hot dy of their scores, the bound of the dtype, and the
    layer facts (measured on first use, then kept)."""

    def __init__(self, net, record, targets, progress: bool = False):
        from minicnn.tools.targets import one_hot

        self.net, self.record, self.targets, self.progress = net, record, np.asarray(targets), progress
        self.dy = one_hot(self.targets, record.output())
        self.bound = bound_for(net.dtype)
        self._facts = None
        self._twin = None

    def bias_free(self) -> Setting:
        """The same setting on ``bias_free_copy(net)`` (its own forward pass over the same images,
        the same targets), built on first use and kept."""
        if self._twin is None:
            twin = bias_free_copy(self.net)
            self._twin = Setting(twin, twin.run(self.record.input), self.targets, self.progress)
        return self._twin

    @property
    def facts(self) -> list[LayerFacts]:
        if self._facts is None:
            self._facts = layer_facts(self.net, self.record)
        return self._facts
