"""A mutation per row of the equivalence suite: break one side of one equality (a scale, a shift, a
wrong rule at one layer, a wrong switch) and check that exactly the rows that read the broken code
move, and no other.

A row "moves" when its verdict changes (holds -> FAILS), or, for a row whose claim is a measurement
(a gap shown because a condition fails, the convergence cosines), when its value changes by more
than 1e-9. The network is a small float64 VGG ending in global average pooling (every section has
rows), with biases (the relevance sections add their bias-free rows)."""

import numpy as np
import pytest

import minicnn as mc
from minicnn.layers import relu as relu_layer
from minicnn.tools import equivalence_cam, equivalence_convergence, equivalence_modes, equivalence_relevance

TARGETS = [0, 2]


@pytest.fixture(scope="module")
def setup(make_small_vgg):
    net = make_small_vgg(seed=4, size=16, classes=4, gap=True).astype(np.float64)
    for layer, key, value in net.parameters():
        if key == "bias":
            setattr(layer, key, value + 0.05)  # biases present, whatever the initialiser gives
    x = np.abs(np.random.default_rng(1).standard_normal((2, 3, 16, 16)))  # nonnegative, as pixels
    return net, x, state(net, x)


def state(net, x) -> dict:
    """(section, row) -> what a move changes: the verdict, and the value of a measurement row."""
    res = mc.equivalence(net, x, TARGETS, progress=False)
    out = {}
    for section in res.sections:
        for row in section.rows:
            value = None
            if row.holds is None:
                value = (row.gap, tuple(sorted(row.numbers.items())))
            out[(section.name, row.name)] = (row.holds, value)
    return out


def same(a, b) -> bool:
    (holds_a, value_a), (holds_b, value_b) = a, b
    if holds_a != holds_b:
        return False
    if value_a is None:
        return True
    gap_a, nums_a = value_a
    gap_b, nums_b = value_b
    close = (gap_a is None and gap_b is None) or abs(gap_a - gap_b) <= 1e-9 * max(1.0, abs(gap_a))
    return close and all(abs(u[1] - v[1]) <= 1e-9 for u, v in zip(nums_a, nums_b))


def moved(setup) -> set:
    net, x, before = setup
    after = state(net, x)
    assert after.keys() == before.keys()
    return {key for key in before if not same(before[key], after[key])}


def rows(setup, section, names=None) -> set:
    """The (section, row) keys of ``section`` (all rows, or those named)."""
    return {k for k in setup[2] if k[0] == section and (names is None or k[1] in names)}


def below_top_relu(setup) -> set:
    """The convergence rows below the rectifier nearest the output: above it every rule sends the
    same signal, so a change of one ReLU rule moves only these."""
    net = setup[0]
    keys = [k for k in setup[2] if k[0] == "convergence"]
    top = next(i for i, k in enumerate(keys) if k[1] in net.names and net[k[1]].is_rectifier)
    return set(keys[top + 1 :])


def test_unbroken_suite_holds_everywhere(setup):
    net, x, before = setup
    assert all(holds is not False for holds, _ in before.values()), before
    assert moved(setup) == set()  # the state is deterministic: a second run moves nothing


def test_engine_deconvnet_rule_wrong(monkeypatch, setup):
    """The ReLU's "deconvnet" rule given the forward mask too: the deconvnet section's ReLU rows and
    its whole-network row, and the convergence cosines of that rule."""
    monkeypatch.setitem(relu_layer.MASKS, "deconvnet", (True, True))
    relus = {layer.name for layer in setup[0].layers if layer.is_rectifier}
    assert moved(setup) == rows(setup, "deconvnet", relus | {"whole network"}) | below_top_relu(setup)


def test_engine_guided_rule_wrong(monkeypatch, setup):
    monkeypatch.setitem(relu_layer.MASKS, "guided", (False, True))
    relus = {layer.name for layer in setup[0].layers if layer.is_rectifier}
    assert moved(setup) == rows(setup, "guided", relus | {"whole network"}) | below_top_relu(setup)


def test_independent_guided_stage_wrong_at_one_layer(monkeypatch, setup):
    """Springenberg's side without the forward mask at one rectifier: that row and the whole
    network of the guided section."""
    original = equivalence_modes.guided_stage
    one = next(layer.name for layer in setup[0].layers if layer.is_rectifier)

    def broken(layer, signal, record):
        if layer.name == one:
            return np.maximum(signal, 0)
        return original(layer, signal, record)

    monkeypatch.setattr(equivalence_modes, "guided_stage", broken)
    assert moved(setup) == rows(setup, "guided", {one, "whole network"})


def test_reverse_convolution_scaled_at_one_layer(monkeypatch, setup):
    """The DeconvNet's filtering stage times 3 at one convolution: that layer's rows in the three
    sections that run the reverse network, and their whole-network rows."""
    net = setup[0]
    one = [layer.name for layer in net.layers if layer.is_convolution][1]
    cls = type(net[one])
    original = cls.reverse

    def broken(self, signal, cache, input_shape):
        out = original(self, signal, cache, input_shape)
        return 3 * out if self.name == one else out

    monkeypatch.setattr(cls, "reverse", broken)
    expected = rows(setup, "simonyan", {one})
    expected |= rows(setup, "deconvnet", {one, "whole network"}) | rows(
        setup, "guided", {one, "whole network"}
    )
    assert moved(setup) == expected


def test_reverse_rectification_dropped_at_one_relu(monkeypatch, setup):
    """The DeconvNet's rectification left out at one ReLU (the wrong rule at one layer): the
    Simonyan row's measured count leaves the predicted one, the deconvnet section's row fails."""
    net = setup[0]
    one = [layer.name for layer in net.layers if layer.is_rectifier][-1]
    cls = type(net[one])
    original = cls.reverse
    monkeypatch.setattr(
        cls, "reverse", lambda self, s, c, shape: s if self.name == one else original(self, s, c, shape)
    )
    assert moved(setup) == rows(setup, "simonyan", {one}) | rows(setup, "deconvnet", {one, "whole network"})


def test_one_wrong_switch(monkeypatch, setup):
    """One switch of the first max-pool moved off its maximum: the switches row of that layer; the
    Simonyan, deconvnet and guided rows do not see it (both of their sides read the same switches),
    which is why the switches section exists. LRP-0 and gradient x input also read the switch, but
    differently (relevance goes to the switch whole, the gradient times x there): that row moves."""
    from minicnn.layers import pool

    net = setup[0]
    first = next(layer.name for layer in net.layers if layer.is_pooling)
    original = pool.maxpool_forward

    def broken(x, kh, kw, stride):
        y, switches = original(x, kh, kw, stride)
        if x.shape[2] == 16:  # the first pool's input (16 x 16), in every forward pass
            switches = switches.copy()
            switches[0, 0, 0, 0] = (switches[0, 0, 0, 0] + 1) % (kh * kw)
        return y, switches

    monkeypatch.setattr(pool, "maxpool_forward", broken)
    got = moved(setup)
    assert rows(setup, "switches", {first}) <= got
    untouched = {"simonyan", "deconvnet", "guided", "cam"}
    assert not {k for k in got if k[0] in untouched}, got
    assert {k[0] for k in got} <= {"switches", "lrp0", "deeplift", "ig", "zplus", "convergence"}, got
    assert rows(setup, "lrp0") <= got  # relevance R_out at the switch, gradient x input x_switch g


def test_cam_side_shifted(monkeypatch, setup):
    original = equivalence_cam.cam
    monkeypatch.setattr(equivalence_cam, "cam", lambda *a, **k: original(*a, **k) + 0.01)
    assert moved(setup) == rows(setup, "cam")


def test_grad_cam_side_scaled(monkeypatch, setup):
    original = equivalence_cam.grad_cam
    monkeypatch.setattr(equivalence_cam, "grad_cam", lambda *a, **k: 1.5 * original(*a, **k))
    assert moved(setup) == rows(setup, "cam")


def lrp_broken_for(name, change):
    """mc.lrp that applies ``change`` to its result when the composite is called ``name``."""
    original = equivalence_relevance.lrp

    def broken(net, x, target, composite, record=None):
        out = original(net, x, target, composite, record=record)
        return change(out) if composite.name == name else out

    return broken


def test_lrp0_side_scaled(monkeypatch, setup):
    monkeypatch.setattr(equivalence_relevance, "lrp", lrp_broken_for("lrp-0", lambda r: 1.01 * r))
    assert moved(setup) == rows(setup, "lrp0")


def test_epsilon_side_shifted(monkeypatch, setup):
    """The epsilon-LRP side of the DeepLIFT section: both its rows (the network's gap, the bias-free
    copy's pass)."""
    monkeypatch.setattr(
        equivalence_relevance, "lrp", lrp_broken_for("epsilon", lambda r: r + 1e-3 * abs(r).max())
    )
    assert moved(setup) == rows(setup, "deeplift")


def test_deeplift_side_scaled(monkeypatch, setup):
    original = equivalence_relevance.deeplift
    monkeypatch.setattr(equivalence_relevance, "deeplift", lambda *a, **k: 0.99 * original(*a, **k))
    assert moved(setup) == rows(setup, "deeplift")


def test_ig_side_scaled(monkeypatch, setup):
    original = equivalence_relevance.integrated_gradients
    monkeypatch.setattr(
        equivalence_relevance, "integrated_gradients", lambda *a, **k: 1.001 * original(*a, **k)
    )
    assert moved(setup) == rows(setup, "ig")


def test_alpha_beta_wrong_rule_at_one_layer(monkeypatch, setup):
    """alpha2-beta1 instead of alpha1-beta0 at one convolution: the z+ / alpha1-beta0 row alone."""
    from minicnn.rules import AlphaBeta, Composite

    net = setup[0]
    one = [layer.name for layer in net.layers if layer.is_convolution][1]
    original = equivalence_relevance.lrp

    def broken(net, x, target, composite, record=None):
        if composite.name == "alpha1-beta0":
            composite = Composite(
                name="broken", convolution=composite.convolution, dense=composite.dense,
                by_name=((one, AlphaBeta(2.0, 1.0, composite.stabilizer)),), stabilizer=composite.stabilizer,
            )  # fmt: skip
        return original(net, x, target, composite, record=record)

    monkeypatch.setattr(equivalence_relevance, "lrp", broken)
    assert moved(setup) == rows(setup, "zplus", {"network, alpha1-beta0"})


def test_excitation_side_shifted(monkeypatch, setup):
    original = equivalence_relevance.excitation_backprop
    monkeypatch.setattr(
        equivalence_relevance, "excitation_backprop", lambda *a, **k: original(*a, **k) + 1e-4
    )
    got = moved(setup)
    assert got == rows(setup, "zplus", {"network", "bias-free copy"}) and got


def test_convergence_classes_wrong(monkeypatch, setup):
    """The runner-up taken as the target itself: every cosine becomes 1, the convergence rows move."""
    monkeypatch.setattr(equivalence_convergence, "runner_up", lambda scores, targets: np.asarray(targets))
    assert moved(setup) == rows(setup, "convergence")


def test_engine_gradient_rule_wrong(monkeypatch, setup):
    """The ReLU's gradient rule given the DeconvNet's rectification too (guided): the Simonyan ReLU
    rows' measured count leaves the predicted one, LRP-0 leaves gradient x input, IG's measured gap
    on the biased network changes. Not moved: CAM (no ReLU between the maps and the score), the IG
    row on the bias-free copy (both of its sides take the engine's gradient, broken alike: that
    row tests homogeneity, not the gradient), DeepLIFT and excitation (their own ReLU rules)."""
    monkeypatch.setitem(relu_layer.MASKS, "gradient", (True, True))
    relus = {layer.name for layer in setup[0].layers if layer.is_rectifier}
    expected = rows(setup, "simonyan", relus) | rows(setup, "lrp0") | rows(setup, "ig", {"network"})
    assert moved(setup) == expected | below_top_relu(setup)


# -- signed pixels: the z+ / excitation rows above the first convolution ------------------------------


@pytest.fixture(scope="module")
def signed(make_small_vgg):
    """The setup's network on signed inputs (pixels in network-input space after a mean is taken
    off): the first convolution reads negative values, so the z+ / excitation rows gain the rows
    measured above it."""
    net = make_small_vgg(seed=4, size=16, classes=4, gap=True).astype(np.float64)
    for layer, key, value in net.parameters():
        if key == "bias":
            setattr(layer, key, value + 0.05)
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16))
    return net, x, state(net, x)


def above_rows(signed) -> set:
    first = next(layer.name for layer in signed[0].layers if layer.is_convolution)
    return rows(signed, "zplus", {f"network, above {first}", f"bias-free copy, above {first}"})


def test_signed_inputs_add_rows_above_the_first_convolution(signed):
    """The whole-network excitation rows fail the nonnegative-input condition; above the first
    convolution it holds, and on the bias-free copy z+ equals excitation backprop there."""
    first = next(layer.name for layer in signed[0].layers if layer.is_convolution)
    state_ = signed[2]
    assert len(above_rows(signed)) == 2
    assert state_[("zplus", f"bias-free copy, above {first}")][0] is True
    assert state_[("zplus", f"network, above {first}")][0] is None  # biases: the gap is the finding
    assert state_[("zplus", "bias-free copy")][0] is None  # signed pixels: a condition fails


def test_excitation_at_a_layer_scaled(monkeypatch, signed):
    """excitation_backprop(layer=...) times 1.001: the rows above the first convolution alone."""
    original = equivalence_relevance.excitation_backprop

    def broken(*args, **kwargs):
        out = original(*args, **kwargs)
        return 1.001 * out if kwargs.get("layer") else out

    monkeypatch.setattr(equivalence_relevance, "excitation_backprop", broken)
    assert moved(signed) == above_rows(signed)


def test_zplus_wrong_rule_above_the_first_convolution(monkeypatch, signed):
    """alpha2-beta1 instead of z+ at the second convolution, in the z+ side of the section: every z+
    row moves (the z+ vs alpha1-beta0 row, the whole-network excitation rows, the rows above the
    first convolution), no other section's."""
    from minicnn.rules import AlphaBeta, Composite

    net = signed[0]
    one = [layer.name for layer in net.layers if layer.is_convolution][1]
    original = equivalence_relevance.composite

    def broken(rule, name, stabilizer):
        made = original(rule, name, stabilizer)
        if name != "z+":
            return made
        return Composite(name, rule, rule, by_name=((one, AlphaBeta(2.0, 1.0, stabilizer)),),
                         stabilizer=stabilizer)  # fmt: skip

    monkeypatch.setattr(equivalence_relevance, "composite", broken)
    assert moved(signed) == rows(signed, "zplus")
