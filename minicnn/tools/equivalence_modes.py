"""The engine's "deconvnet" and "guided" backward rules against the reverse network built apart.

Two sections of the equivalence suite. The engine computes DeconvNet and guided backpropagation as
backward rules of its layers (``rec.backward(dy, mode=...)``, minicnn/rules.py; used by reconstruct,
saliency --mode and verify); tools/deconvnet.py builds the same two methods as Zeiler & Fergus and
Springenberg et al. draw them, from the layers' own reverse stages (``reverse``: unpooling, a forward
convolution with flipped filters, W^T, rectification of the signal) and, for guided backpropagation,
the DeconvNet rectification composed with the forward mask at every rectifier (``guided_stage``).

    deconvnet  row per layer: reverse stage vs the layer's backward under "deconvnet", both applied
               to the same incoming signal of the independent DeconvNet pass; whole network:
               ``deconvnet_backward`` vs ``rec.backward(dy, mode="deconvnet")``
    guided     the same with ``guided_stage`` vs the "guided" rule (Springenberg et al. 2015, fig. 1:
               guided = DeconvNet rectification x forward mask)

Both are identities by definition, so they hold on every network (no condition); a break in either
code (the ReLU kernel's rule, a reverse stage, the engine's graph walk) moves its rows.
"""

from __future__ import annotations

from tqdm.auto import tqdm

from minicnn.record import INPUT
from minicnn.rules import layer_backward
from minicnn.tools.deconvnet import guided_stage, reverse_layer, walk
from minicnn.tools.equivalence_section import Row, Section, gap

THEOREMS = {
    "deconvnet": (
        "the engine's DeconvNet rule against the DeconvNet built apart",
        "the backward pass under the engine's 'deconvnet' rule is Zeiler & Fergus's reverse network "
        "(2013, sec. 2.1, fig. 1): unpooling at the switches, rectification of the signal, filtering "
        "with the transposed filters, W^T R, the averaging's transpose",
        "reverse stage",
        "the reverse stage (tools/deconvnet.py, layer.reverse)",
    ),
    "guided": (
        "guided backpropagation = DeconvNet rectification composed with the forward mask",
        "the backward pass under the engine's 'guided' rule is the DeconvNet's reverse network with "
        "max(R, 0) [X > 0] at each rectifier (Springenberg et al. 2015, fig. 1)",
        "stage x mask",
        "the reverse stage, max(R, 0) [X > 0] at a rectifier (tools/deconvnet.guided_stage)",
    ),
}


def modes_section(setting, mode: str) -> Section:
    """The section comparing the engine's ``mode`` ("deconvnet" or "guided") with the reverse
    network of tools/deconvnet.py: a row per layer the class score reaches (output first) and one
    for the whole network. Each row's sides: left, the independent stage (``reverse_layer`` or
    ``guided_stage``) on the independent pass's own signal; right, ``layer.backward`` under the
    engine's rule (``rules.layer_backward``) on that same signal."""
    net, rec = setting.net, setting.record
    title, theorem, left, sides = THEOREMS[mode]
    stage = reverse_layer if mode == "deconvnet" else guided_stage
    right = f"rule {mode!r}"
    rows, done, whole = [], {}, None

    def independent(layer, signal):  # the pass goes on with the stage the row already computed
        return done.pop(layer.name) if layer.name in done else stage(layer, signal, rec)

    steps = walk(net, rec, setting.dy, independent)
    for name, signal in tqdm(steps, desc=mode, unit="layer", leave=False, disable=not setting.progress):
        if name == INPUT:  # the image: the whole independent pass's result
            whole = signal
            continue
        layer = net[name]
        done[name] = ours = stage(layer, signal, rec)
        engine, _ = layer_backward(layer, signal, rec.cache(name), mode)
        rows.append(Row(name, left, right, gap(ours, engine), setting.bound))
    if whole is None:  # the score does not depend on the image (never for a trained network)
        whole = rec.input * 0
    engine_whole = rec.backward(setting.dy, mode=mode)
    what = "deconvnet_backward" if mode == "deconvnet" else "guided_backward"
    rows.append(
        Row("whole network", what, f"rec.backward(mode={mode!r})", gap(whole, engine_whole), setting.bound)
    )
    notes = [
        f"sides: {sides} vs the layer's backward under the engine's {right}, on the same incoming signal"
    ]
    return Section(mode, title, theorem, [], rows, notes)


def deconvnet_section(setting) -> Section:
    """Independent DeconvNet (tools/deconvnet.py) vs the engine's "deconvnet" rule."""
    return modes_section(setting, "deconvnet")


def guided_section(setting) -> Section:
    """Independent guided backpropagation (DeconvNet rectification x forward mask) vs the engine's
    "guided" rule."""
    return modes_section(setting, "guided")
