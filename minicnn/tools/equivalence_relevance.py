"""The equalities between relevance methods and gradient x input, measured (Ancona et al. 2018).

Four sections of the equivalence suite, each between two separate codes: the LRP rules of the
engine (mc.lrp: the rule values of minicnn/rules.py read by the layers, layers/relevance.py),
DeepLIFT-Rescale (mc.deeplift: the ReLU's secant rule), Integrated Gradients (mc.integrated_gradients:
gradients at points of the path, summed by quadrature), excitation backprop (mc.excitation_backprop:
each layer's positive twin run forward and backward), and gradient x input (the gradient backward
times x).

    lrp0       LRP-0 = gradient x input on ReLU / max-pool networks, biases included (the bias is in
               z, and R_j = z_j dS/dz_j telescopes; Kindermans et al. 2016; Ancona et al. 2018,
               sec. 3.1)
    deeplift   DeepLIFT-Rescale with a zero reference = epsilon-LRP, epsilon -> 0, on bias-free ReLU
               networks (every reference activation is 0, so every secant is the gradient; Ancona et
               al. 2018, sec. 3.2)
    ig         Integrated Gradients with a zero baseline = gradient x input on bias-free positively
               homogeneous networks (the ReLU and max-pool pattern is the same at every a x, a > 0,
               so the gradient is constant along the path; Sundararajan et al. 2017; Ancona et al.)
    zplus      LRP-z+ = alpha1-beta0 (Montavon et al. 2017, sec. 4: the beta term vanishes) and, on
               bias-free layers with nonnegative inputs, = excitation backprop (Zhang et al. 2016)
               with the relevance starting at 1 instead of the score. Where some layers read signed
               inputs (the first convolution reads pixels in network-input space, negative after
               torchvision's or Caffe's preprocessing), a further row compares the two above the
               highest such layer (at its output), where every layer's input is nonnegative

The theorems hold with epsilon -> 0. The lrp0 and deeplift sections take that limit itself at the
convolutions and dense layers (the LRP-0 rule, 0 where z = 0: the two sections' LRP side is one
computation), because epsilon-LRP with a small epsilon misses it by about epsilon / |z| at units
whose z is near 0: measured with epsilon = TINY against DeepLIFT on the shipped models' bias-free
copies, 4.4e-13 in float64 and 4.2e-5 in float32 (above the float32 bound). The z+ and alpha-beta
rules, whose denominators are sums of same-signed terms, take TINY as their stabiliser, and so do
the parameter-free layers (pooling) in every section.
Where a condition fails on the network as given (biases), the row shows the measured gap and a
second row measures the equality on the network's bias-free copy
(equivalence_conditions.bias_free_copy), where it must hold.
"""

from __future__ import annotations

import numpy as np

from minicnn.errors import MinicnnError
from minicnn.rules import LRP0, AlphaBeta, Composite, ZPlus
from minicnn.tools.deconvnet import forward_input
from minicnn.tools.deeplift import deeplift
from minicnn.tools.equivalence_conditions import homogeneous, no_biases, relu_maxpool
from minicnn.tools.equivalence_section import Condition, Row, Section, gap
from minicnn.tools.excitation import excitation_backprop
from minicnn.tools.integrated_gradients import integrated_gradients
from minicnn.tools.lrp import lrp

#: the stabiliser standing for epsilon -> 0, by dtype. Its share of a relevance is about TINY / |z|,
#: so it must be small; but where a unit's z is 0 (a dead unit) its relevance is divided by TINY,
#: and the lowered products (Winograd, im2col) leave rounding residues of the dtype's precision of
#: what they carry, so too small a TINY lets those residues grow. Measured, z+ against excitation
#: backprop on the shipped GAP model: float64 1e-30 gives a gap of 1e22, 1e-20 of 2e-8, 1e-16 of
#: 7e-16, 1e-12 of 8e-13; float32 1e-16 gives 3e3, 1e-10 2e-6, 1e-8 4e-7, 1e-6 1e-6.
TINY = {np.dtype(np.float64): 1e-16, np.dtype(np.float32): 1e-8}


def tiny(setting) -> float:
    """The stabiliser of ``setting``'s dtype (TINY)."""
    return TINY.get(np.dtype(setting.net.dtype), 1e-8)


#: Integrated Gradients' quadrature: right Riemann sums over 2 steps, the points x / 2 and x. Where
#: the conditions hold the gradient is the same at every a x (a > 0), so any points give gradient x
#: input; these two are scaled by powers of two, which commute exactly with floating-point rounding,
#: so a unit whose z is a rounding residue near 0 cannot flip its sign between the points (with
#: Gauss-Legendre's 4 nodes such flips were measured at 4.6e-6 on the shipped GAP model, float64)
IG_METHOD, IG_STEPS = "riemann_right", 2


def composite(rule, name: str, stabilizer: float) -> Composite:
    """``rule`` at every convolution and dense layer, ``stabilizer`` at the other linear layers."""
    return Composite(name=name, convolution=rule, dense=rule, stabilizer=stabilizer)


def gradient_x_input(setting):
    """x * dS_t/dx by the engine's gradient backward, (N, C, H, W)."""
    return setting.record.input * setting.record.backward(setting.dy, mode="gradient")


def signed_input_layers(setting, above: str | None = None) -> list[str]:
    """The convolutions and dense layers (run order) whose recorded input has a negative entry; only
    those run after layer ``above`` when it is given."""
    rec, net = setting.record, setting.net
    first = 0 if above is None else net.names.index(above) + 1
    return [
        layer.name
        for layer in net.layers[first:]
        if (layer.is_convolution or layer.is_linear) and float(forward_input(layer, rec).min()) < 0
    ]


def nonnegative_inputs(setting, above: str | None = None) -> Condition:
    """Every convolution and dense layer (after ``above``, when given) reads nonnegative inputs
    (Zhang et al.'s assumption)."""
    bad = signed_input_layers(setting, above)
    detail = f"negative inputs at {', '.join(bad[:3])}" if bad else "measured per layer"
    where = "" if above is None else f" above {above}"
    return Condition(f"nonnegative inputs to the convolutions and dense layers{where}", not bad, detail)


def rows_with_copy(
    setting, name, left, right, sides, conditions, twin_name="bias-free copy"
) -> tuple[list[Condition], list[Row]]:
    """The conditions on ``setting``'s network and its row; if a condition fails, a second row
    (``twin_name``) on the bias-free copy with its own conditions. ``sides(setting) -> (a, b)``;
    ``conditions(setting)``."""
    checked = conditions(setting)
    failed = "; ".join(c.name for c in checked if not c.holds)
    rows = [measure(setting, name, left, right, sides, failed)]
    if failed:
        twin = setting.bias_free()
        twin_failed = "; ".join(c.name for c in conditions(twin) if not c.holds)
        rows.append(measure(twin, twin_name, left, right, sides, twin_failed))
    return checked, rows


def measure(setting, name, left, right, sides, failed) -> Row:
    """One row: the gap of the two sides, or the one-line reason a side could not run."""
    try:
        a, b = sides(setting)
    except MinicnnError as exc:
        return Row(name, left, right, None, setting.bound, failed=str(exc))
    return Row(name, left, right, gap(a, b), setting.bound, failed=failed)


def lrp0_section(setting) -> Section:
    """mc.lrp with LRP-0 at every layer vs gradient x input."""

    def sides(st):
        return lrp(
            st.net, st.record.input, st.targets, composite(LRP0(), "lrp-0", tiny(st)), record=st.record
        ), (gradient_x_input(st))

    checked, rows = rows_with_copy(
        setting, "network", "mc.lrp LRP-0", "gradient x input", sides, lambda st: [relu_maxpool(st.facts)]
    )
    return Section(
        "lrp0",
        "LRP-0 vs gradient x input",
        "LRP-0 equals gradient x input on networks of ReLUs, max-pools and linear layers, biases "
        "included (Kindermans et al. 2016; Ancona et al. 2018, sec. 3.1)",
        checked,
        rows,
        ["sides: the LRP-0 rule of the layers (mc.lrp, the score as initial relevance) vs x times the "
         "gradient backward"],
    )  # fmt: skip


def deeplift_section(setting) -> Section:
    """mc.deeplift with a zero reference vs mc.lrp with epsilon -> 0."""

    def sides(st):
        x = st.record.input
        return deeplift(st.net, x, st.targets, baseline=0, record=st.record), lrp(
            st.net, x, st.targets, composite(LRP0(), "epsilon", tiny(st)), record=st.record
        )

    checked, rows = rows_with_copy(
        setting, "network", "mc.deeplift x0 = 0", "mc.lrp epsilon -> 0", sides,
        lambda st: [relu_maxpool(st.facts), no_biases(st.facts)],
    )  # fmt: skip
    return Section(
        "deeplift",
        "DeepLIFT-Rescale (zero reference) vs epsilon-LRP",
        "with a zero reference, DeepLIFT-Rescale equals epsilon-LRP (epsilon -> 0) on bias-free ReLU "
        "networks (Ancona et al. 2018, sec. 3.2; Shrikumar et al. 2017)",
        checked,
        rows,
        [
            "sides: the ReLU's secant rule (mc.deeplift) vs mc.lrp's epsilon rule at its limit epsilon = 0 "
            "(LRP-0, 0 where z = 0) at the convolutions and dense layers, TINY at the poolings"
        ],
    )


def ig_section(setting) -> Section:
    """mc.integrated_gradients with a zero baseline vs gradient x input."""

    def sides(st):
        x = st.record.input
        ig = integrated_gradients(
            st.net,
            x,
            st.targets,
            baseline=0.0,
            steps=IG_STEPS,
            method=IG_METHOD,
            batch_size=len(x),
            record=st.record,
        )
        return ig, gradient_x_input(st)

    checked, rows = rows_with_copy(
        setting, "network", f"mc.integrated_gradients ({IG_STEPS} steps)", "gradient x input", sides,
        lambda st: [no_biases(st.facts), homogeneous(st.facts), relu_maxpool(st.facts)],
    )  # fmt: skip
    return Section(
        "ig",
        "Integrated Gradients (zero baseline) vs gradient x input",
        "with a zero baseline, Integrated Gradients equals gradient x input on bias-free positively "
        "homogeneous ReLU / max-pool networks (Sundararajan et al. 2017; Ancona et al. 2018)",
        checked,
        rows,
        ["sides: gradients at the path's quadrature points (mc.integrated_gradients) vs x times the "
         "gradient at x"],
    )  # fmt: skip


def zplus_section(setting) -> Section:
    """mc.lrp z+ vs alpha1-beta0, and z+ (divided by the score) vs mc.excitation_backprop."""
    x, rec = setting.record.input, setting.record

    maps = {}  # the z+ map of each setting, computed once for both of its rows

    def zplus(st):
        if id(st) not in maps:
            rule = composite(ZPlus(tiny(st)), "z+", tiny(st))
            maps[id(st)] = lrp(st.net, st.record.input, st.targets, rule, record=st.record)
        return maps[id(st)]

    alpha = lrp(
        setting.net,
        x,
        setting.targets,
        composite(AlphaBeta(1.0, 0.0, tiny(setting)), "alpha1-beta0", tiny(setting)),
        record=rec,
    )
    rows = [
        Row(
            "network, alpha1-beta0",
            "mc.lrp z+",
            "mc.lrp alpha1-beta0",
            gap(zplus(setting), alpha),
            setting.bound,
        )
    ]

    def sides(st):
        scores = st.record.output()[np.arange(len(st.targets)), st.targets]
        relevance = zplus(st) / scores.reshape(-1, 1, 1, 1)
        return relevance, excitation_backprop(st.net, st.record.input, st.targets, record=st.record)

    checked, more = rows_with_copy(
        setting, "network", "mc.lrp z+ / score", "mc.excitation_backprop", sides,
        lambda st: [no_biases(st.facts), nonnegative_inputs(st)],
    )  # fmt: skip
    more += rows_above_signed_inputs(setting)
    return Section(
        "zplus",
        "LRP-z+ vs alpha1-beta0 vs excitation backprop",
        "z+ equals alpha1-beta0 on every layer (Montavon et al. 2017, sec. 4); on bias-free layers "
        "with nonnegative inputs it is excitation backprop with the relevance starting at 1 (Zhang et "
        "al. 2016, sec. 3.2)",
        checked,
        rows + more,
        ["sides: the z+ rule and the alpha-beta rule (two rule values of mc.lrp), and z+ vs each layer's "
         "positive twin run forward and backward (mc.excitation_backprop); conditions are the "
         "excitation row's",
         "rows 'above L': z+ from a relevance of 1 (rec.backward, stop=L) vs mc.excitation_backprop(layer=L) "
         "at the output of L, the highest layer reading signed inputs"],
    )  # fmt: skip


def rows_above_signed_inputs(setting) -> list[Row]:
    """z+ vs excitation backprop at the output of the highest convolution or dense layer whose input
    has negative entries (none: no row), on the network and, where it has biases, its bias-free
    copy. Above that layer every input is nonnegative, so the equality's conditions can hold there
    on a network whose first layer reads signed pixels. Chains only (excitation refuses graphs)."""
    signed = signed_input_layers(setting)
    if not signed or not setting.net.is_chain:
        return []
    where = signed[-1]

    def sides(st):
        rule = composite(ZPlus(tiny(st)), "z+", tiny(st))
        relevance = st.record.backward(st.dy, mode=rule, stop=where)  # relevance 1 at the target
        return relevance, excitation_backprop(
            st.net, st.record.input, st.targets, layer=where, record=st.record
        )

    _, rows = rows_with_copy(
        setting, f"network, above {where}", "z+ from 1", "mc.excitation_backprop", sides,
        lambda st: [no_biases(st.facts), nonnegative_inputs(st, above=where)],
        twin_name=f"bias-free copy, above {where}",
    )  # fmt: skip
    return rows
