"""The measured equivalence table (Simonyan et al. 2013, sec. 4) against an independent torch DeconvNet."""

import numpy as np
import pytest
import torch_models as tm
from support import assert_close, oracle
from torch_mirror import to_torch

import minicnn as mc
from minicnn.errors import MinicnnError

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks")
SAME_KINDS = (
    "Conv2D", "MaxPool2D", "AvgPool2D", "AdaptiveAvgPool2D", "Dense", "Flatten", "Dropout", "GlobalAvgPool2D",
)  # fmt: skip
AVERAGE_KINDS = ("AvgPool2D", "AdaptiveAvgPool2D", "GlobalAvgPool2D")
TABLE = ["simonyan"]  # the per-layer table only (the other sections: test_equivalence_sections.py)


def torch_relu_rows(net, x, targets, tol):
    """For each ReLU: (rel diff, count differing by more than tol * scale, size) of the two rules on the
    DeconvNet signal that a torch mirror with a hand-written DeconvNet ReLU (autograd.Function)
    delivers to it."""
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
        rows[name] = (diff.max().item() / scale, int((diff > tol * scale).sum()), diff.numel())
    return rows


def check_against_torch(net, x, targets):
    res = mc.equivalence(net, x, targets, sections=TABLE)
    assert res.tol == (1e-5 if net.dtype == np.float32 else 1e-6)  # the dtype's default
    expected = torch_relu_rows(net, x, targets, res.tol)
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
    res = mc.equivalence(vgg16, vgg_image[:1], [7], sections=TABLE)
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
    table = res.simonyan_table()
    assert len(table.splitlines()) == len(vgg16.layers) + 5 + 6  # title, rules, counts, pairs
    assert "block5_conv3_relu" in table and "dX [X > 0]" in table and "R [R > 0]" in table


def test_shipped_digit_model(digit_net, make_digit_images):
    check_against_torch(digit_net, make_digit_images(digit_net), [0, 1, 2, 3])


# -- model files: torchvision's and timm's layouts written by torch, and ONNX graphs ---------------

FILES = {  # name -> (torch model builder, input size, file format)
    # AdaptiveAvgPool2d((2, 2)) of a 5 x 5 map: overlapping windows
    "torchvision_pth": (lambda: tm.torchvision_vgg(bn=False, side=2), 40, "zip"),
    # VGG16-BN's layout (BatchNorm folded), AdaptiveAvgPool2d((7, 7)) of a 2 x 2 map: windows repeat
    "torchvision_bn_legacy": (
        lambda: tm.torchvision_vgg(tm.VGG16_NARROW, bn=True, hidden=64, classes=1000, side=7), 64, "legacy",
    ),
    "timm_safetensors": (lambda: tm.timm_vgg(), 224, "safetensors"),
    "onnx": (lambda: tm.torchvision_vgg(bn=True, side=2), 48, "onnx"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(FILES))
def test_model_files(tmp_path, name):
    """Each file type loads to a network whose table runs (average pools included) and whose
    whole-network DeconvNet and gradient equal Captum's on the ORIGINAL torch model (float64)."""
    torch, attr = oracle("torch"), oracle("captum.attr")
    build, size, fmt = FILES[name]
    model = build()
    if fmt == "onnx":
        path = tm.save_onnx(model, tmp_path / "m.onnx", size)
    else:
        path = tm.save(model, tmp_path / f"m.{fmt}", fmt)
    net = mc.load(path).astype(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3, size, size))
    targets = [3, 1]
    res = check_against_torch(net, x, targets)
    assert any(r.kind in AVERAGE_KINDS for r in res.rows), [r.kind for r in res.rows]
    xt = torch.tensor(x, requires_grad=True)
    original = model.double()
    for mode, method, kwargs in [
        ("deconvnet", "Deconvolution", {}),
        ("gradient", "Saliency", {"abs": False}),
    ]:
        ref = getattr(attr, method)(original).attribute(xt, target=targets, **kwargs)
        assert_close(res.signals[mode], ref.detach().numpy(), rtol=1e-6, what=f"{name} {mode}")


def onnx_average_graph(path):
    """An ONNX graph torch's exporter does not write: Conv -> Relu -> AveragePool(3, 2, pads 1,
    count_include_pad=0: the divisor counts real inputs only) -> Conv -> Relu -> GlobalAveragePool
    -> Flatten -> Gemm, on (1, 3, 13, 11); seeded weights."""
    onnx = oracle("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(8)
    inits = [
        numpy_helper.from_array(a.astype(np.float32), name)
        for name, a in [
            ("w1", rng.standard_normal((5, 3, 3, 3)) * 0.5), ("b1", rng.uniform(-0.1, 0.1, 5)),
            ("w2", rng.standard_normal((6, 5, 3, 3)) * 0.4), ("b2", rng.uniform(-0.1, 0.1, 6)),
            ("wg", rng.standard_normal((4, 6))), ("bg", rng.uniform(-0.5, 0.5, 4)),
        ]
    ]  # fmt: skip
    N = onnx.helper.make_node
    nodes = [
        N("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        N("Relu", ["c1"], ["r1"], name="relu1"),
        N("AveragePool", ["r1"], ["p1"], name="pool1", kernel_shape=[3, 3], strides=[2, 2],
          pads=[1, 1, 1, 1], count_include_pad=0),
        N("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        N("Relu", ["c2"], ["r2"], name="relu2"),
        N("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        N("Flatten", ["g"], ["f"], name="flatten"),
        N("Gemm", ["f", "wg", "bg"], ["y"], name="fc", transB=1),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "average",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 13, 11])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_onnx_average_pool_without_padding_in_its_divisor(tmp_path):
    """The padded AveragePool of ONNX's default (count_include_pad=0): its row agrees, and the whole
    DeconvNet equals Captum's Deconvolution on the torch mirror (float64)."""
    torch, attr = oracle("torch"), oracle("captum.attr")
    net = mc.load(onnx_average_graph(tmp_path / "average.onnx")).astype(np.float64)
    pools = [layer for layer in net.layers if layer.is_pooling]
    assert [layer.config()["count_include_pad"] for layer in pools] == [False]
    x = np.random.default_rng(9).standard_normal((2, 3, 13, 11))
    res = check_against_torch(net, x, [2, 0])
    assert {"AvgPool2D", "GlobalAvgPool2D"} <= {r.kind for r in res.rows}
    xt = torch.tensor(x, requires_grad=True)
    ref = attr.Deconvolution(to_torch(net, torch.float64)).attribute(xt, target=[2, 0])
    assert_close(res.signals["deconvnet"], ref.detach().numpy(), rtol=1e-12)


def test_torchvision_vgg16_at_224(tmp_path):
    """Full-size torchvision VGG16 (AdaptiveAvgPool2d((7, 7)), 138M parameters) from a .pth file
    at 224 x 224, float32: the table the DeconvNet used to refuse. ~20 s (half of it torch
    building and writing the file)."""
    oracle("torch")
    model = tm.torchvision_vgg(tm.VGG16, bn=False, hidden=4096, classes=1000, side=7)
    net = mc.load(tm.save(model, tmp_path / "vgg16.pth", "zip"))
    del model
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    res = mc.equivalence(net, x, [7], progress=False, sections=TABLE)
    assert [r.name for r in res.rows] == net.names[::-1]
    assert [r.kind for r in res.rows if r.name == "avgpool"] == ["AdaptiveAvgPool2D"]
    for r in res.rows:
        if r.kind == "ReLU":
            assert r.rel_diff > 1e-3 and r.frac_differ > 0, r
        else:
            assert r.rel_diff < 1e-5 and r.frac_differ == 0, r


# -- the table is a measurement: two codes per row, and a break in either shows ------------------

LINEAR_KINDS = ("Conv2D", "MaxPool2D", "Dense", "Flatten", "GlobalAvgPool2D", "Dropout")


def random_geometry_net(seed):
    """A float64 net with a random stride, padding and (possibly overlapping) pool, then dense."""
    rng = np.random.default_rng(seed)
    k, s = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    p, pk = int(rng.integers(0, k + 2)), int(rng.integers(2, 4))
    ps = int(rng.integers(1, pk + 2))
    body = [
        mc.Conv2D(3, 6, k, stride=s, padding=p), mc.ReLU(), mc.MaxPool2D(pk, ps),
        mc.Conv2D(6, 5, 3, padding=int(rng.integers(0, 3))), mc.ReLU(), mc.Flatten(),
    ]  # fmt: skip
    size = int(rng.integers(18, 26))
    features = int(np.prod(mc.Sequential(body).shapes((3, size, size))[-1]))
    head = [
        mc.Dense(features, 8, name="fc"),
        mc.ReLU(name="fc_relu"),
        mc.Dropout(0.5),
        mc.Dense(8, 4, name="out"),
    ]
    layers = [*body, *head]
    return mc.Sequential(layers, seed=seed, dtype=np.float64), size, (k, s, p, pk, ps)


@pytest.mark.parametrize("seed", range(6))
def test_random_geometries_float64(seed):
    net, size, geometry = random_geometry_net(seed)
    x = np.random.default_rng(seed).standard_normal((2, 3, size, size))
    res = mc.equivalence(net, x, [1, 3], sections=TABLE)
    for r in res.rows:
        if r.kind in LINEAR_KINDS:
            assert r.rel_diff < 1e-10, (geometry, r)
        else:
            assert r.kind == "ReLU"


def vgg_style_64():
    """VGG16's 13 convolutions and 5 pools at 64x64, with a small dense head, in float64."""
    convs = mc.vgg16(seed=0, include_top=False, input_size=64).layers
    head = [mc.Flatten(), mc.Dense(512 * 2 * 2, 32, name="fc"), mc.ReLU(name="fc_relu"), mc.Dense(32, 10)]
    return mc.Sequential([*convs, *head], seed=0).astype(np.float64)


def test_vgg_style_64_float64():
    net = vgg_style_64()
    x = np.random.default_rng(3).standard_normal((2, 3, 64, 64)) * 50
    res = mc.equivalence(net, x, [3, 7], sections=TABLE)
    kinds = {r.kind for r in res.rows}
    assert {"Conv2D", "MaxPool2D", "Dense", "ReLU", "Flatten"} <= kinds
    for r in res.rows:
        if r.kind == "ReLU":
            assert r.rel_diff > 1e-3, r
        else:
            assert r.rel_diff < 1e-10, r


def test_vgg16_224_float64_per_layer():
    """VGG16's convolutional stack at 224x224 in float64 (the dense top is checked in float32 by
    test_vgg16 and in float64 above): every conv and pool stage against the gradient rule. ~30 s."""
    from minicnn.tools.deconvnet import reverse_layer

    net = mc.vgg16(seed=0, include_top=False).astype(np.float64)
    rec = net.run(np.random.default_rng(3).standard_normal((1, 3, 224, 224)) * 50)
    signal = np.random.default_rng(0).standard_normal(rec.output().shape)
    checked = 0
    for layer in reversed(net.layers):
        dec = reverse_layer(layer, signal, rec)
        if not layer.is_rectifier:
            grad, _ = layer.backward(signal, rec.cache(layer.name))
            assert_close(dec, grad, rtol=1e-10, what=layer.name)
            checked += 1
        signal = dec
    assert checked == 13 + 5


@pytest.mark.parametrize(
    "cls,kinds",
    [(mc.Conv2D, {"Conv2D"}), (mc.MaxPool2D, {"MaxPool2D"}), (mc.Dense, {"Dense"})],
)
def test_a_broken_backward_shows_in_its_rows(monkeypatch, make_small_vgg, cls, kinds):
    """Multiply one layer type's gradient dx by 3: exactly that type's rows show the break."""
    net = make_small_vgg(seed=4).astype(np.float64)
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16))
    before = {r.name: r.rel_diff for r in mc.equivalence(net, x, [0, 2], sections=TABLE).rows}
    original = cls.backward

    def broken(self, dy, cache, **kwargs):
        dx, grads = original(self, dy, cache, **kwargs)
        return dx * 3, grads

    monkeypatch.setattr(cls, "backward", broken)
    res = mc.equivalence(net, x, [0, 2], sections=TABLE)
    for r in res.rows:
        if r.kind in kinds:
            assert before[r.name] < 1e-10 and abs(r.rel_diff - 2 / 3) < 1e-9, r  # |3g - g| / |3g|
            assert r.frac_differ > 0.2, r  # max-pool: only the switches (1 in 4) are non-zero
        else:
            assert r.rel_diff == pytest.approx(before[r.name], abs=1e-12), r


def test_a_broken_backward_shows_on_the_shipped_model(monkeypatch, digit_net, make_digit_images):
    x = make_digit_images(digit_net)
    original = mc.Conv2D.backward
    monkeypatch.setattr(
        mc.Conv2D, "backward", lambda self, dy, cache, **kw: (3 * original(self, dy, cache, **kw)[0], None)
    )
    for r in mc.equivalence(digit_net, x, [0, 1, 2, 3], sections=TABLE).rows:
        if r.kind == "Conv2D":
            assert r.rel_diff > 0.6, r


def test_record_is_reused(small_net, small_images):
    rec = small_net.run(small_images)
    a = mc.equivalence(small_net, small_images, [2, 0, 1], record=rec)
    b = mc.equivalence(small_net, small_images, [2, 0, 1])
    assert [r.rel_diff for r in a.rows] == [r.rel_diff for r in b.rows]
    with pytest.raises(MinicnnError, match="record"):
        mc.equivalence(small_net, small_images.copy(), [2, 0, 1], record=rec)


# -- the command's --tol ---------------------------------------------------------------------------


def run_cli(*args):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo), TQDM_DISABLE="1")
    cmd = [sys.executable, "-m", "minicnn.cli.main", "equivalence", *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("tol", ["0", "-0.5", "1", "nan"])
def test_cli_refuses_a_bad_tol(tmp_path, tol):
    out = tmp_path / "out"
    r = run_cli("--tol", tol, "--out", out)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "--tol" in lines[0] and tol in lines[0], r
    assert not out.exists()


def test_cli_tol_reaches_the_table(tmp_path):
    r = run_cli("--tol", "0.001", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "equivalence.txt").read_text()
    assert "|diff| > 0.001 * scale" in text
