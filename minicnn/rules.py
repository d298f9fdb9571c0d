"""The backward rules: what a backward pass computes, named once and checked once.

A rule is a value that a backward pass carries from the top of the network down. Only a layer
whose backward a rule changes reads it, and says so (``Layer.reads_rule``); every other layer is
the same under every rule and never receives it.

The three rules of the visualisation papers are names (the values of ``mode=`` and of the CLI's
``--mode``). Simonyan et al. (2013, sec. 4) and Springenberg et al. (2015, fig. 1) show that they
differ only at the ReLU:

    rule        read by   paper
    gradient    ReLU      Simonyan et al. 2013, sec. 3: dS/dx, the saliency map's derivative
    deconvnet   ReLU      Zeiler & Fergus 2013, sec. 2.1: rectify the backward signal itself
    guided      ReLU      Springenberg et al. 2015: both masks (guided backpropagation)

Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2017, 2019) and DeepLIFT
(Shrikumar et al. 2017) are rule values, frozen dataclasses below. An LRP rule says how a linear
layer z = W x + b (convolution, dense, and, with their fixed weights, the poolings, BatchNorm and
the residual sum) splits the relevance R of its outputs among its inputs:

    rule                 R_in =                                           (s: the stabiliser below)
    LRP0                 x * W^T (R / z)                  (0 where z == 0)  Bach et al. 2015
    Epsilon(eps)         x * W^T (R / s(z, eps))                            Bach et al. 2015
    Gamma(gamma)         z+ terms of (W + gamma W+) on x+, (W + gamma W-) on x- where z > 0, and the
                         mirror where z < 0 (Zennit's generalised gamma)    Montavon et al. 2019
    ZPlus                x+ * W+^T g + x- * W-^T g,  g = R / s(W+ x+ + W- x- + b+)
                                                                            Montavon et al. 2017
    AlphaBeta(a, b)      a (positive part as ZPlus) - b (negative part: W- x+ + W+ x- + b-)
                                                                            Bach et al. 2015
    Flat                 1^T (R / s(1^T 1)): every input of the window the same share
                                                                            Lapuschkin et al. 2019
    WSquare              W^2^T (R / s(W^2 1 + b^2))                         Montavon et al. 2017
    ZBox(low, high)      x W^T g - l W+^T g - h W-^T g, g = R / s(W x + b - W+ l - b+ - W- h - b-)
                                                                            Montavon et al. 2017

with x+ = max(x, 0), x- = min(x, 0), W+ = max(W, 0), W- = min(W, 0) (biases likewise), and the
stabiliser s(z, e) = z + e * sign(z), sign(0) = +1 (Zennit's ``stabilize``). The ReLU passes
relevance unchanged; max-pooling routes it through its switches (winner-take-all, as Zennit and
Captum do, where max-pooling is not hooked or takes the epsilon rule of a max: the maximum's share
is the whole); the parameter-free linear layers (average pooling, global average pooling, the
residual sum, a BatchNorm kept as a layer) take the z-rule with the composite's stabiliser
(Zennit's ``Norm``): the sum gives each input x_i * R / s(x_1 + ... + x_k).

A composite assigns a rule per layer: by name first, then the first convolution or dense layer,
then convolutions and dense layers by role (Zennit's composites; Kohlbrenner et al. 2020). The
named ones (``COMPOSITES``) have Zennit's semantics and defaults (epsilon = stabiliser = 1e-6,
gamma = 0.25). A lone LRP rule used as ``mode`` is the composite giving it to every convolution
and dense layer.

DeepLIFT's Rescale rule (Shrikumar et al. 2017, sec. 3.3) is read by the ReLU alone: it multiplies
the signal by (y - y0) / (x - x0), the ReLU's output and input differences from the reference
input's forward pass, and by the gradient [x > 0] where x == x0. Linear layers and the sum take
their gradient (the linear rule, sec. 3.5.1), max-pooling its gradient through the switches of the
input (DeepLIFT's own "gradient" max-pool mode; Captum's max-pool rule differs, see
minicnn/tools/deeplift.py).

``check_mode`` is the one check: the public entry points that take a rule call it before any work,
and the CLI's ``--mode`` offers MODES as its choices, so a misspelt rule is one line naming the
choices, and the layers trust what they receive. This module sits on the lowest floor (it imports
only minicnn.errors) so that the command line can build its options without loading the layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from minicnn.errors import MinicnnError

#: the backward rules, by name (the values of ``mode=`` and of the CLI's ``--mode``)
MODES = ("gradient", "deconvnet", "guided")

#: who introduced each rule, for reports and help text
PAPERS = {
    "gradient": "Simonyan et al. 2013",
    "deconvnet": "Zeiler & Fergus 2013",
    "guided": "Springenberg et al. 2015",
}

#: Zennit's default stabiliser (and epsilon)
STABILIZER = 1e-6


# -- LRP rules: how a linear layer splits relevance ------------------------------------------------
class LRPRule:
    """The base of the LRP rules (an LRP rule reaches linear layers, and the ReLU passes it on)."""

    stabilizer: float = STABILIZER


@dataclass(frozen=True)
class LRP0(LRPRule):
    """The z-rule, R_in = x * W^T (R / z), 0 where z == 0 (Bach et al. 2015, eq. 56)."""

    stabilizer: float = 0.0


@dataclass(frozen=True)
class Epsilon(LRPRule):
    """R_in = x * W^T (R / (z + eps sign(z))) (Bach et al. 2015, eq. 58; Montavon et al. 2019, 10.2.2)."""

    epsilon: float = STABILIZER

    @property
    def stabilizer(self):
        return self.epsilon


@dataclass(frozen=True)
class Gamma(LRPRule):
    """Positive weights favoured by gamma (Montavon et al. 2019, sec. 10.2.3), in Zennit's
    sign-aware form (positive outputs from x+ (W + g W+) + x- (W + g W-), negative ones mirrored)."""

    gamma: float = 0.25
    stabilizer: float = STABILIZER


@dataclass(frozen=True)
class ZPlus(LRPRule):
    """Only positive contributions: W+ x+ + W- x- + b+ (Montavon et al. 2017, sec. 4.1, the z+ rule
    of deep Taylor decomposition). Written apart from AlphaBeta(1, 0), which equals it."""

    stabilizer: float = STABILIZER


@dataclass(frozen=True)
class AlphaBeta(LRPRule):
    """alpha times the positive contributions' shares minus beta times the negative ones'
    (Bach et al. 2015, eq. 60); alpha - beta = 1 conserves relevance."""

    alpha: float = 2.0
    beta: float = 1.0
    stabilizer: float = STABILIZER


@dataclass(frozen=True)
class Flat(LRPRule):
    """Every input of an output's window gets the same share (Lapuschkin et al. 2019): weights 1,
    inputs 1, bias 0. For the first layer."""

    stabilizer: float = STABILIZER


@dataclass(frozen=True)
class WSquare(LRPRule):
    """Shares by squared weights, inputs 1 (Montavon et al. 2017, sec. 4.2, the w^2 rule). For a
    first layer whose inputs are unbounded."""

    stabilizer: float = STABILIZER


@dataclass(frozen=True)
class ZBox(LRPRule):
    """The z^B rule for inputs bounded by [low, high] (Montavon et al. 2017, sec. 4.3): a float or
    one value per channel (a tuple) each. For the first layer on pixels."""

    low: float | tuple = 0.0
    high: float | tuple = 1.0
    stabilizer: float = STABILIZER


@dataclass(frozen=True)
class Norm(LRPRule):
    """The z-rule of a parameter-free linear layer (pooling, the residual sum): x * J^T (R / s(z))
    (Zennit's Norm)."""

    stabilizer: float = STABILIZER


#: the LRP rules a user may name for convolutions and dense layers
LRP_RULES = (LRP0, Epsilon, Gamma, ZPlus, AlphaBeta, Flat, WSquare, ZBox)


@dataclass(frozen=True)
class Composite:
    """A rule per layer (Kohlbrenner et al. 2020; Zennit's composites), chosen in this order:

    by_name: ((layer name, rule), ...) for named layers;
    first: the rule of the first convolution or dense layer run (``first_dense``: also when that
        layer is a dense layer; otherwise only a first convolution), None for none;
    convolution, dense: the rules of the other convolutions (``is_convolution``) and dense layers
        (``is_linear``);
    stabilizer: the Norm rule's, for pooling, the residual sum and a BatchNorm kept as a layer.
    """

    name: str
    convolution: LRPRule
    dense: LRPRule
    first: LRPRule | None = None
    first_dense: bool = False
    by_name: tuple = ()
    stabilizer: float = STABILIZER

    def rule_for(self, layer, first: bool) -> LRPRule:
        """The rule of ``layer``; ``first``: whether it is the first convolution or dense layer run."""
        named = dict(self.by_name)
        if layer.name in named:
            return named[layer.name]
        if first and self.first is not None and (layer.is_convolution or self.first_dense):
            return self.first
        if layer.is_convolution:
            return self.convolution
        if layer.is_linear:
            return self.dense
        return Norm(self.stabilizer)


def uniform(rule: LRPRule) -> Composite:
    """One LRP rule for every convolution and dense layer (and Norm at the other linear layers)."""
    return Composite(name=repr(rule), convolution=rule, dense=rule)


def epsilon_plus(epsilon=STABILIZER, stabilizer=STABILIZER) -> Composite:
    """Zennit's EpsilonPlus: z+ at convolutions, epsilon at dense layers."""
    return Composite("epsilon-plus", ZPlus(stabilizer), Epsilon(epsilon), stabilizer=stabilizer)


def epsilon_alpha2_beta1(epsilon=STABILIZER, stabilizer=STABILIZER) -> Composite:
    """Zennit's EpsilonAlpha2Beta1: alpha2-beta1 at convolutions, epsilon at dense layers."""
    return Composite(
        "epsilon-alpha2-beta1", AlphaBeta(2.0, 1.0, stabilizer), Epsilon(epsilon), stabilizer=stabilizer
    )


def epsilon_plus_flat(epsilon=STABILIZER, stabilizer=STABILIZER) -> Composite:
    """Zennit's EpsilonPlusFlat: flat at the first convolution or dense layer, z+ at the other
    convolutions, epsilon at dense layers."""
    return Composite(
        "epsilon-plus-flat", ZPlus(stabilizer), Epsilon(epsilon), first=Flat(stabilizer),
        first_dense=True, stabilizer=stabilizer,
    )  # fmt: skip


def epsilon_gamma_box(low, high, epsilon=STABILIZER, gamma=0.25, stabilizer=STABILIZER) -> Composite:
    """Zennit's EpsilonGammaBox: z^B at the first convolution (inputs in [low, high]), gamma at the
    other convolutions, epsilon at dense layers."""
    return Composite(
        "epsilon-gamma-box", Gamma(gamma, stabilizer), Epsilon(epsilon),
        first=ZBox(low, high, stabilizer), stabilizer=stabilizer,
    )  # fmt: skip


#: composites and rules by name (``mc.lrp(..., composite=NAME)``); epsilon-gamma-box needs bounds.
#: "lrp0" is the z-rule at every layer, the poolings and sums too (no stabiliser anywhere: LRP-0 is
#: then exactly gradient x input on ReLU / max-pool networks); the others take Zennit's stabiliser.
COMPOSITES = {
    "lrp0": lambda: Composite("lrp0", LRP0(), LRP0(), stabilizer=0.0),
    "epsilon": lambda: uniform(Epsilon()),
    "gamma": lambda: uniform(Gamma()),
    "zplus": lambda: uniform(ZPlus()),
    "alpha1beta0": lambda: uniform(AlphaBeta(1.0, 0.0)),
    "alpha2beta1": lambda: uniform(AlphaBeta(2.0, 1.0)),
    "epsilon-plus": epsilon_plus,
    "epsilon-plus-flat": epsilon_plus_flat,
    "epsilon-alpha2-beta1": epsilon_alpha2_beta1,
    "epsilon-gamma-box": epsilon_gamma_box,
}


# -- DeepLIFT ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DeepLift:
    """DeepLIFT's Rescale rule (Shrikumar et al. 2017, sec. 3.3) against ``reference``: the record
    of the reference input's forward pass (a PassRecord of the same network, same batch size)."""

    reference: object = field(repr=False)


class LayerRule(NamedTuple):
    """What a layer that reads a rule value receives as ``mode``: the rule chosen for it, with what
    its forward pass recorded (so that no layer reruns its forward).

    rule: an LRPRule or DeepLift; input: the layer's forward input (a tuple for several inputs);
    output: its forward output (z); reference: DeepLIFT's (input, output) of the same layer in the
    reference pass, else None.
    """

    rule: object
    input: object
    output: object
    reference: tuple | None = None


def check_mode(mode):
    """``mode`` if it is a backward rule (a name of MODES, an LRP rule, a Composite, DeepLift);
    else one MinicnnError naming the choices."""
    if isinstance(mode, str) and mode in MODES:
        return mode
    if isinstance(mode, DeepLift) and not hasattr(mode.reference, "layer_input"):
        raise MinicnnError(
            f"DeepLift's reference must be the record of a forward pass (net.run(x0)), got "
            f"{type(mode.reference).__name__}"
        )
    if isinstance(mode, (LRPRule, Composite, DeepLift)) and not isinstance(mode, type):
        return mode
    raise MinicnnError(
        f"unknown backward mode {mode!r}: expected one of {', '.join(MODES)}, an LRP rule, "
        "a Composite or DeepLift"
    )


def is_named(mode) -> bool:
    """Whether ``mode`` is one of the named rules (MODES), which every layer reading rules takes as is."""
    return isinstance(mode, str)


def assign(mode, layers, record) -> list:
    """The ``mode`` each of ``layers`` (a record's layers, in run order) receives: the name itself
    for MODES, else a LayerRule built from ``record`` (``record.layer_input(i)``, its outputs) and,
    for DeepLift, from the reference record likewise. DeepLift reaches the rectifiers alone
    (``is_rectifier``): every other layer takes the gradient, DeepLIFT's linear rule."""
    if isinstance(mode, str):
        return [mode] * len(layers)

    def recorded(i, rule, reference=None):
        return LayerRule(rule, record.layer_input(i), record.outputs[layers[i].name], reference)

    if isinstance(mode, DeepLift):
        ref = mode.reference
        if list(ref.names) != [layer.name for layer in layers] or ref.input.shape != record.input.shape:
            raise MinicnnError(
                "DeepLift's reference record must be a pass of the same layers over a batch of the same shape"
            )
        return [
            recorded(i, mode, (ref.layer_input(i), ref.outputs[layer.name]))
            if layer.is_rectifier
            else "gradient"
            for i, layer in enumerate(layers)
        ]
    composite = uniform(mode) if isinstance(mode, LRPRule) else mode
    first = next((i for i, layer in enumerate(layers) if layer.is_convolution or layer.is_linear), None)
    return [
        recorded(i, composite.rule_for(layer, i == first)) if layer.reads_rule else None
        for i, layer in enumerate(layers)
    ]


def layer_backward(layer, dy, cache, mode="gradient", need_params: bool = False):
    """One layer's backward under rule ``mode``: (dx, grads) of ``layer.backward``.

    The rule goes to the layer only if the layer declares that it reads one (``reads_rule``): a
    layer that no rule changes takes no rule. ``mode`` is assumed checked (``check_mode``): a name
    of MODES, or the LayerRule that ``assign`` built for this layer.
    """
    if layer.reads_rule:
        return layer.backward(dy, cache, mode=mode, need_params=need_params)
    return layer.backward(dy, cache, need_params=need_params)
