"""mc.verify: minicnn's maps of torch-written files equal Captum's on the ORIGINAL torch model (with
its BatchNorm and adaptive pool, in float64), the comparison finds a changed region, layouts are read
right, and the Captum finding of issue 15 (Deconvolution through two consecutive ReLUs)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch_models as tm
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.tools.verify import METHODS, compare, rank_correlation, to_layout, verify

SIZE = 48


@pytest.fixture(scope="module", params=[True, False], ids=["bn", "plain"])
def small(request, tmp_path_factory):
    """(minicnn net in float64, the torch model in float64, x float64 (2, 3, 48, 48), targets).

    With BatchNorm the folded weights were rounded to float32 once at load (mc.load makes float32
    networks) while torch applies BatchNorm in float64, so the two agree to ~1e-7, not 1e-15."""
    torch = oracle("torch")
    model = tm.torchvision_vgg(bn=request.param)
    path = tm.save(model, tmp_path_factory.mktemp("v") / "small.pth", "zip")
    net = mc.load(path).astype(np.float64)
    x = mc.preprocess(tm.images(2, SIZE, seed=4), "torch", dtype=np.float64)
    targets = [3, 7]
    return net, model.to(torch.float64), x, targets


def captum_on_original(model, x, method, targets, net):
    """Captum's map on the torch model itself (not a mirror built from minicnn's layers)."""
    torch = oracle("torch")
    attr = oracle("captum.attr")
    xt = torch.from_numpy(x)
    if method in ("saliency", "gradient"):
        out = attr.Saliency(model).attribute(xt, target=targets, abs=method == "saliency")
    elif method == "gradient_x_input":
        out = attr.InputXGradient(model).attribute(xt, target=targets)
    elif method == "deconvnet":
        out = attr.Deconvolution(model).attribute(xt, target=targets)
    elif method == "guided":
        out = attr.GuidedBackprop(model).attribute(xt, target=targets)
    elif method == "grad_cam":  # Selvaraju et al.'s layer: the last convolution's ReLU
        last = [m for m in model.features if isinstance(m, torch.nn.ReLU)][-1]
        out = attr.LayerGradCam(model, last).attribute(xt, target=targets, relu_attributions=True)
    else:
        window = {"sliding_window_shapes": (3, 16, 16), "strides": (1, 8, 8)}
        out = attr.Occlusion(model).attribute(xt, baselines=torch.zeros_like(xt), target=targets, **window)
    return out.detach().numpy()


@pytest.mark.parametrize("method", METHODS)
def test_minicnn_equals_captum_on_the_torch_model(small, method):
    net, model, x, targets = small
    ref = captum_on_original(model, x, method, targets, net)
    tol = 1e-6 if any("running_mean" in k for k in model.state_dict()) else 1e-9
    if method == "occlusion":
        # NOTE Captum 0.9's Occlusion returns float32 attributions even for a float64 model and input
        assert ref.dtype == np.float32
        tol = 1e-6
    result = verify(net, x, ref, method, targets, tol=tol, size=16, stride=8, fill="zero")
    assert result.agree, result.lines()
    assert result.rank_correlation > 0.999999
    assert result.layout == "NCHW"


def test_the_three_rules_really_differ(small):
    """So that agreeing with Captum's three methods is three findings, not one."""
    net, model, x, targets = small
    maps = {m: captum_on_original(model, x, m, targets, net) for m in ("gradient", "deconvnet", "guided")}
    assert not verify(net, x, maps["deconvnet"], "gradient", targets).agree
    assert not verify(net, x, maps["guided"], "deconvnet", targets).agree
    assert not verify(net, x, maps["gradient"], "guided", targets).agree


def test_mirror_for_against_captum_equals_the_original(small):
    """--against captum builds torch modules from minicnn's layers: same maps as the original model."""
    from minicnn.tools.captum_reference import captum_map

    net, model, x, targets = small
    tol = 1e-6 if any("running_mean" in k for k in model.state_dict()) else 1e-9  # see ``small``
    for method in ("guided", "grad_cam"):
        ours = captum_map(net, x, method, targets)
        assert_close(ours, captum_on_original(model, x, method, targets, net), tol, method)


def test_a_changed_region_is_found(small):
    net, model, x, targets = small
    ref = captum_on_original(model, x, "gradient", targets, net)
    ref[1, :, 20:26, 30:36] *= 1.5
    result = verify(net, x, ref, "gradient", targets, tol=1e-6)
    assert not result.agree and result.max_rel_diff > 1e-3
    n, y, xx = result.worst
    assert n == 1 and 20 <= y < 26 and 30 <= xx < 36
    assert 0 < result.fraction_beyond <= 3 * 36 / ref.size


@pytest.mark.parametrize("layout", ["NCHW", "NHWC", "CHW", "HWC"])
def test_layouts(layout):
    rng = np.random.default_rng(0)
    ours = rng.standard_normal((1, 3, 5, 7))
    stored = {
        "NCHW": ours,
        "NHWC": ours.transpose(0, 2, 3, 1),
        "CHW": ours[0],
        "HWC": ours[0].transpose(1, 2, 0),
    }
    arranged, name = to_layout(stored[layout], 1, 3, (5, 7))
    assert name == layout and np.array_equal(arranged, ours)
    with pytest.raises(MinicnnError, match="fits none of the layouts"):
        to_layout(stored[layout], 1, 3, (7, 5))


def test_rank_correlation_with_ties_equals_scipy():
    stats = oracle("scipy.stats")
    rng = np.random.default_rng(1)
    a = np.maximum(rng.standard_normal(500), 0)  # many ties at zero, as in guided maps
    b = a + 0.3 * rng.standard_normal(500)
    assert rank_correlation(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def test_npz_map_and_zero_reference(tmp_path, small):
    net, model, x, targets = small
    g = captum_on_original(model, x, "gradient", targets, net)
    np.savez(tmp_path / "m.npz", grad=g.transpose(0, 2, 3, 1), other=np.zeros(3))
    with pytest.raises(MinicnnError, match="name one with --key"):
        verify(net, x, tmp_path / "m.npz", "gradient", targets)
    assert verify(net, x, tmp_path / "m.npz", "gradient", targets, key="grad", tol=1e-8).layout == "NHWC"
    with pytest.raises(MinicnnError, match="all zeros"):
        compare(np.ones((1, 2, 2)), np.zeros((1, 2, 2)), 1e-3)


# -- the Captum finding (issue 15, item 3) -------------------------------------------------------
X = np.array([-1.0, 2.0, -3.0, 4.0])
DY = np.array([1.0, 1.0, 2.0, -2.0])


REPRODUCER = """
import torch, captum.attr as A
nn = torch.nn
for relus, method in ((1, "Deconvolution"), (2, "Deconvolution"), (2, "GuidedBackprop")):
    m = nn.Sequential(*[nn.ReLU() for _ in range(relus)], nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        m[-1].weight.copy_(torch.tensor([[1.0, 1.0, 2.0, -2.0]]))
    x = torch.tensor([[-1.0, 2.0, -3.0, 4.0]])
    print(getattr(A, method)(m).attribute(x, target=0).detach().numpy()[0].tolist())
# the same input tensor x, first through Deconvolution, then GuidedBackprop (each on a new model)
x = torch.tensor([[-1.0, 2.0, -3.0, 4.0]])
for method in ("Deconvolution", "GuidedBackprop"):
    m = nn.Sequential(nn.ReLU(), nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        m[-1].weight.copy_(torch.tensor([[1.0, 1.0, 2.0, -2.0]]))
    print(getattr(A, method)(m).attribute(x, target=0).detach().numpy()[0].tolist())
"""


def test_captum_deconvolution_through_two_relus_returns_the_guided_value():
    """The minimal reproducer, Captum alone: nn.Sequential(ReLU, ReLU) then a linear read-out with
    weights DY (so the upstream gradient at the second ReLU is DY), x = X. DeconvNet's rule at a
    ReLU is relu(dy) whatever the input (Zeiler & Fergus 2013, sec. 2.1), so two ReLUs give
    relu(relu(DY)) = [1, 1, 2, 0]; Captum 0.9 returns [0, 1, 0, 0], the guided value. With ONE
    ReLU it is right. Run in a fresh interpreter, in this order, because of the second finding at
    the end: Captum's answer depends on what was done before with the same input tensor. If this
    test fails, Captum changed: update the README's note."""
    import subprocess
    import sys

    oracle("captum")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", REPRODUCER],
                         capture_output=True, text=True, check=True, timeout=300)  # fmt: skip
    rows = [[float(v) for v in line.strip("[]").split(",")] for line in out.stdout.splitlines()]
    one, two, guided, deconv_x, guided_same_x = rows
    assert one == [1, 1, 2, 0]  # relu(DY): right
    assert two == [0, 1, 0, 0]  # should be relu(relu(DY)) = [1, 1, 2, 0]
    assert guided == [0, 1, 0, 0]  # the guided value, right
    # A second finding: after Deconvolution on an input tensor, GuidedBackprop on the SAME tensor
    # (a new model, one ReLU) returns the DeconvNet value, not relu(DY) * (X > 0) = [0, 1, 0, 0].
    assert deconv_x == [1, 1, 2, 0]
    assert guided_same_x == [1, 1, 2, 0]


def relu_relu_net():
    """The reproducer as a minicnn network: input (1, 4, 1, 1), ReLU, ReLU, Flatten, Dense(DY)."""
    net = mc.Sequential(
        [mc.ReLU(), mc.ReLU(), mc.Flatten(), mc.Dense(4, 1)],
        meta={"preprocess": "none", "input_shape": [4, 1, 1]},
    )
    net.layers[-1].weight = DY[None].astype(np.float32)
    net.layers[-1].bias = np.zeros(1, np.float32)
    return net


def test_verify_against_captum_finds_it():
    from minicnn.tools.captum_reference import captum_map

    oracle("captum")
    net = relu_relu_net()
    x = X.reshape(1, 4, 1, 1).astype(np.float32)
    ours = mc.Sequential.run(net, x).backward(np.ones((1, 1), np.float32), mode="deconvnet")
    assert np.array_equal(ours.ravel(), [1, 1, 2, 0])  # relu(relu(dy)), the definition
    ref = captum_map(net, x, "deconvnet", [0])  # [0, 1, 0, 0] in a fresh process, see above
    result = verify(net, x, ref, "deconvnet", 0)
    assert not result.agree and result.max_rel_diff >= 0.5


# -- --against keras -------------------------------------------------------------------------------
def test_keras_reference_agrees(small):
    """Keras (torch backend) rebuilt channels-last from the loaded network: its gradient and
    Grad-CAM equal minicnn's (float32 in Keras, so 1e-4), and it refuses the rules it lacks."""
    oracle("keras")
    from minicnn.tools.keras_reference import keras_map

    net, _, x, targets = small
    x32 = x.astype(np.float32)
    net32 = copy.deepcopy(net).astype(np.float32)  # the fixture stays float64
    for method in ("gradient", "grad_cam"):
        result = verify(net32, x32, keras_map(net32, x32, method, targets), method, targets, tol=1e-4)
        assert result.agree, result.lines()
    with pytest.raises(MinicnnError, match="Keras has no guided rule"):
        keras_map(net32, x32, "guided", targets)
