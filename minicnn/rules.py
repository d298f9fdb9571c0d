"""The backward rules: what a backward pass computes, named once and checked once.

A rule is a value (its name) that a backward pass carries from the top of the network down. Only a
layer whose backward a rule changes reads it, and says so (``Layer.reads_rule``); every other layer
is the same under every rule and never receives it. Simonyan et al. (2013, sec. 4) and Springenberg
et al. (2015, fig. 1) show that the three rules below differ only at the ReLU:

    rule        read by   paper
    gradient    ReLU      Simonyan et al. 2013, sec. 3: dS/dx, the saliency map's derivative
    deconvnet   ReLU      Zeiler & Fergus 2013, sec. 2.1: rectify the backward signal itself
    guided      ReLU      Springenberg et al. 2015: both masks (guided backpropagation)

How the ReLU applies each rule is stated in minicnn/layers/relu.py. A rule that changes other
layers (an LRP or DeepLIFT rule for convolutions) is named here too, and those layers declare
``reads_rule`` and read it.

``check_mode`` is the one check: the public entry points that take a rule (``PassRecord.backward``,
``reconstruct``, ``topk``) call it before any work, and the CLI's ``--mode`` offers MODES as its
choices, so a misspelt rule is one line naming the choices, and the layers trust what they receive.
This module sits on the lowest floor (it imports only minicnn.errors) so that the command line can
build its options without loading the layers and Numba.
"""

from __future__ import annotations

from minicnn.errors import MinicnnError

#: the backward rules, by name (the values of ``mode=`` and of the CLI's ``--mode``)
MODES = ("gradient", "deconvnet", "guided")

#: who introduced each rule, for reports and help text
PAPERS = {
    "gradient": "Simonyan et al. 2013",
    "deconvnet": "Zeiler & Fergus 2013",
    "guided": "Springenberg et al. 2015",
}


def check_mode(mode) -> str:
    """``mode`` if it names a backward rule; else one MinicnnError naming the choices."""
    if not isinstance(mode, str) or mode not in MODES:
        raise MinicnnError(f"unknown backward mode {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def layer_backward(layer, dy, cache, mode: str = "gradient", need_params: bool = False):
    """One layer's backward under rule ``mode``: (dx, grads) of ``layer.backward``.

    The rule goes to the layer only if the layer declares that it reads one (``reads_rule``): a
    layer that no rule changes takes no rule. ``mode`` is assumed checked (``check_mode``).
    """
    if layer.reads_rule:
        return layer.backward(dy, cache, mode=mode, need_params=need_params)
    return layer.backward(dy, cache, need_params=need_params)
