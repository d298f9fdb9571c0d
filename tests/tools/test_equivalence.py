"""The measured equivalence table (Simonyan et al. 2013, sec. 4) against an independent torch DeconvNet."""

import numpy as np
import pytest
from support import assert_close, oracle
from torch_mirror import to_torch

import minicnn as mc

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks")
SAME_KINDS = ("Conv2D", "MaxPool2D", "Dense", "Flatten", "Dropout", "GlobalAvgPool2D")


def torch_relu_rows(net, x, targets):
    """For each ReLU: (rel diff, differing count, size) of the two rules on the DeconvNet signal that
    a torch mirror with a hand-written DeconvNet ReLU (autograd.Function) delivers to it."""
    torch = oracle("torch")

    class DeconvReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inp):
            return inp.clamp(min=0)

        @staticmethod
        def backward(ctx, grad):
            return grad.clamp(min=0)

    model = to_torch(net, torch.float64)
    seen = {}  # layer name -> [forward input, incoming signal]

    def run(i, inp):
        name = net.layers[i].name
        if net.layers[i].kind != "ReLU":
            return model[i](inp)
        out = DeconvReLU.apply(inp)
        seen[name] = [inp.detach(), None]
        out.register_hook(lambda g: seen[name].__setitem__(1, g.detach()))
        return out

    h = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    for i in range(len(net.layers)):
        h = run(i, h)
    h[torch.arange(len(x)), torch.as_tensor(targets)].sum().backward()
    rows = {}
    for name, (inp, sig) in seen.items():
        grad, dec = sig * (inp > 0), sig.clamp(min=0)
        scale = max(grad.abs().max(), dec.abs().max()).item()
        diff = (grad - dec).abs()
        rows[name] = (diff.max().item() / scale, int((diff > 1e-6 * scale).sum()), diff.numel())
    return rows


def check_against_torch(net, x, targets):
    res = mc.equivalence(net, x, targets)
    expected = torch_relu_rows(net, x, targets)
    relu_rows = [r for r in res.rows if r.kind == "ReLU"]
    assert {r.name for r in relu_rows} == set(expected)
    for r in relu_rows:
        rel, count, size = expected[r.name]
        assert r.rel_diff > 1e-3, r  # the rules differ at every ReLU on a real signal
        assert abs(r.rel_diff - rel) <= 1e-4 * rel, (r, rel)
        assert abs(r.frac_differ * size - count) <= max(2, 1e-3 * size), (r, count, size)
    for r in res.rows:
        if r.kind in SAME_KINDS:
            assert r.rel_diff < 1e-5 and r.frac_differ == 0, r
    return res


def test_small_net(small_net, small_images):
    res = check_against_torch(small_net, small_images, [2, 0, 1])
    assert [r.name for r in res.rows] == small_net.names[::-1]
    # the whole-network signals are the three attributions Captum computes
    torch, attr = oracle("torch"), oracle("captum.attr")
    xt = torch.tensor(small_images, dtype=torch.float64, requires_grad=True)
    model = to_torch(small_net, torch.float64)
    for mode, method in [
        ("gradient", "Saliency"),
        ("deconvnet", "Deconvolution"),
        ("guided", "GuidedBackprop"),
    ]:
        kwargs = {"abs": False} if mode == "gradient" else {}
        ref = getattr(attr, method)(model).attribute(xt, target=torch.tensor([2, 0, 1]), **kwargs)
        assert_close(res.signals[mode], ref.detach().numpy(), what=mode)
    for p in res.pairs:
        a, b = res.signals[p.a].ravel(), res.signals[p.b].ravel()
        assert abs(p.cosine - a @ b / np.linalg.norm(a) / np.linalg.norm(b)) < 1e-5
        assert p.rel_diff > 1e-2


def test_gap_net(make_small_vgg):
    net = make_small_vgg(seed=4, size=12, classes=3, gap=True)
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 12)).astype(np.float32)
    res = check_against_torch(net, x, [0, 2])
    assert any(r.kind == "GlobalAvgPool2D" for r in res.rows)


def test_vgg16(vgg16, vgg_image):
    res = mc.equivalence(vgg16, vgg_image[:1], [7])
    kinds = {r.kind for r in res.rows}
    assert {"Conv2D", "MaxPool2D", "ReLU", "Dense"} <= kinds
    for r in res.rows:
        if r.kind == "ReLU":
            assert r.rel_diff > 1e-3 and r.frac_differ > 0, r
        else:
            assert r.rel_diff < 1e-5, r
    records = res.records()
    assert [r["name"] for r in records["layers"]] == vgg16.names[::-1] and records["targets"] == [7]
    assert {(p["a"], p["b"]) for p in records["pairs"]} == {
        ("gradient", "deconvnet"),
        ("gradient", "guided"),
        ("deconvnet", "guided"),
    }
    table = res.table()
    assert len(table.splitlines()) == len(vgg16.layers) + 4 + 6  # title, rules, pairs
    assert "block5_conv3_relu" in table and "dX [X > 0]" in table and "R [R > 0]" in table


def test_shipped_digit_model(digit_net, make_digit_images):
    check_against_torch(digit_net, make_digit_images(digit_net), [0, 1, 2, 3])
