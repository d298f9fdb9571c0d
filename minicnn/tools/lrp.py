"""Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2017, 2019), with composites
(Kohlbrenner et al. 2020).

The target class's score f_t(x) is the relevance at the output, and each layer splits the relevance
of its outputs among its inputs by a rule (minicnn/rules.py states every rule and the layers that
read it; minicnn/layers/relevance.py computes them): one backward pass on the forward record, with
the rule carried down as the three visualisation rules are. The map sums to about f_t(x) where the
rules conserve relevance (LRP-0 and epsilon without biases; z+ and alpha-beta with alpha - beta = 1
up to the biases' and the stabilisers' shares).

Conventions, where the frameworks differ:
  * the initial relevance is the target's score (Bach et al. 2015, sec. 3; Captum's LRP multiplies
    its result by the score too); Zennit takes whatever the caller passes as ``attr_output``, so a
    Zennit map with a one-hot output equals this map divided by the score;
  * LRP-0 (epsilon -> 0) on a ReLU network with max-pooling is gradient x input, biases or not
    (Ancona et al. 2018, sec. 3; Kindermans et al. 2016): the ReLU passes relevance, max-pooling
    routes it to the window's maximum (its share of a max is the whole), and x W^T (R / z) with
    R = z * dS/dz is x * dS/dx; the map conserves the score only without biases;
  * Captum's LRP gives every layer the epsilon rule with epsilon 1e-9, max-pooling included, where
    the window's maximum then receives z / (z + eps) of R instead of all of it (winner-take-all,
    Zennit's and this module's); ``rules.Composite("captum", Epsilon(1e-9), Epsilon(1e-9),
    stabilizer=1e-9)`` equals Captum's map but for that factor (tests/tools/test_lrp_captum.py);
  * a BatchNorm kept as a layer takes the z-rule of its affine map (as Captum's does); Zennit
    merges each BatchNorm into the convolution before (its canonizers) and so do minicnn's loaders;
    for LRP-0 and epsilon the two agree up to the stabiliser, for z+ / alpha-beta / gamma they
    differ.
"""

from __future__ import annotations

from minicnn.errors import MinicnnError
from minicnn.rules import COMPOSITES, Composite, LRPRule, epsilon_gamma_box
from minicnn.tools.targets import as_batch, forward_record, one_hot, resolve_targets


def resolve_composite(composite, x=None):
    """A rule value for ``backward``: an LRPRule or Composite as given, or one named in
    rules.COMPOSITES. "epsilon-gamma-box" takes its bounds from x (the batch's lowest and highest
    value of each channel) when named: pass ``rules.epsilon_gamma_box(low, high)`` for others."""
    if isinstance(composite, (LRPRule, Composite)) and not isinstance(composite, type):
        return composite
    if isinstance(composite, str) and composite in COMPOSITES:
        if composite == "epsilon-gamma-box":
            if x is None:
                raise MinicnnError("epsilon-gamma-box needs bounds: pass rules.epsilon_gamma_box(low, high)")
            low = tuple(float(v) for v in x.min(axis=(0, 2, 3)))
            high = tuple(float(v) for v in x.max(axis=(0, 2, 3)))
            return epsilon_gamma_box(low, high)
        return COMPOSITES[composite]()
    raise MinicnnError(
        f"unknown LRP composite {composite!r}: expected an LRP rule, a Composite or one of "
        f"{', '.join(COMPOSITES)}"
    )


def lrp(net, x, target="predicted", composite="epsilon", *, record=None):
    """Relevance maps of the target class scores for a batch of images.

    Args:
        net: a Sequential or Graph ending in class scores (N, K).
        x: images (N, C, H, W) in network-input space (preprocessed), or one (C, H, W) image.
        target: class index, list of N indices, or "predicted" (argmax of the scores).
        composite: an LRP rule value (rules.Epsilon(1e-6), rules.ZPlus(), ...: every convolution
            and dense layer takes it), a rules.Composite, or a name of rules.COMPOSITES: "lrp0",
            "epsilon", "gamma", "zplus", "alpha1beta0", "alpha2beta1", "epsilon-plus",
            "epsilon-plus-flat", "epsilon-alpha2-beta1", "epsilon-gamma-box" (Zennit's composites,
            with Zennit's defaults).
        record: the PassRecord of a forward pass over x already run by the caller (reused).

    Returns:
        (N, C, H, W) array of net.dtype on net's device: the relevance of each input value; the
        relevance at the output is the target's score (see the module's notes).
    """
    x = as_batch(net, x)
    mode = resolve_composite(composite, x)
    rec = forward_record(net, x, record)
    scores = rec.output()
    dy = one_hot(resolve_targets(target, scores), scores) * scores
    return rec.backward(dy, mode=mode)
