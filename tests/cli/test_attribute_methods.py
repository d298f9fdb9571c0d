"""``minicnn attribute --method`` with the methods of the registry beyond the first five (LRP,
DeepLIFT, Integrated Gradients, excitation backprop, Guided Grad-CAM) on the shipped model: each
image's file holds the map the tool gives that image in a batch of all of them, with the command's
options reaching the tool (a changed option changes the map), and bad options are one line, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import minicnn
from support import assert_close

import minicnn as mc
from minicnn.cli.main import main
from minicnn.paths import DEFAULT_MODEL, HELDOUT
from minicnn.rules import Epsilon

N = 5


@pytest.fixture(scope="module")
def digits():
    with np.load(HELDOUT) as data:
        return mc.load(DEFAULT_MODEL), mc.preprocess(data["images"][:N, :, :, None], "unit")


def written(tmp_path, method, *options, folder=None):
    """Run the command on the first N shipped digits in shards of 2; (maps (N, ...), metas)."""
    out = tmp_path / "o"
    args = ["attribute", "--method", method, "--count", N, "--shard-size", 2, "--out", out, "--no-progress",
            *options]  # fmt: skip
    assert main([str(a) for a in args]) == 0
    maps, metas = [], []
    for i in range(N):
        with np.load(out / (folder or method) / f"images_{i}.npz") as data:
            maps.append(data[folder or method])
            metas.append(json.loads(str(data["meta"])))
    return np.stack(maps), metas


CASES = [
    ("lrp-epsilon", ["--epsilon", "0.25"], lambda net, x: mc.lrp(net, x, composite=Epsilon(0.25))),
    ("lrp-zplus", [], lambda net, x: mc.lrp(net, x, composite="zplus")),
    ("lrp-alpha1beta0", [], lambda net, x: mc.lrp(net, x, composite="alpha1beta0")),
    ("lrp-composite", ["--composite", "epsilon-plus"],
     lambda net, x: mc.lrp(net, x, composite="epsilon-plus")),
    ("deeplift", [], lambda net, x: mc.deeplift(net, x)),
    # baseline 0 (the default): a constant nonzero baseline makes every background window a tie
    # in max-pooling, which float32 rounding breaks differently in a shard of 2 and a batch of 5
    ("integrated-gradients", ["--steps", "8", "--quadrature", "riemann_trapezoid"],
     lambda net, x: mc.integrated_gradients(net, x, steps=8, method="riemann_trapezoid")),
    ("excitation", [], lambda net, x: mc.excitation_backprop(net, x)),
    ("contrastive-excitation", ["--layer", "block2_pool"],
     lambda net, x: mc.excitation_backprop(net, x, layer="block2_pool", contrastive=True)),
    ("guided-grad-cam", ["--layer", "block2_conv1", "--upsample", "nearest"],
     lambda net, x: mc.guided_grad_cam(net, x, layer="block2_conv1", upsample="nearest")),
]  # fmt: skip


@pytest.mark.parametrize("method, options, tool", CASES, ids=[c[0] for c in CASES])
def test_each_file_holds_the_tools_map(digits, tmp_path, method, options, tool):
    net, x = digits
    maps, metas = written(tmp_path, method, *options)
    expected = tool(net, x)
    # float32: a shard of 2 rounds differently from a batch of 5, at ~1e-5 of the map's peak
    assert_close(maps, expected, rtol=1e-4, what=method)
    assert metas[0]["image"] == "images[0]" and metas[0]["target_index"] == int(net.forward(x[:1]).argmax())


@pytest.mark.parametrize(
    "method, default, changed",
    [("lrp-epsilon", [], ["--epsilon", "0.25"]), ("integrated-gradients", ["--steps", "8"],
     ["--steps", "8", "--baseline", "0.5"]), ("guided-grad-cam", [], ["--upsample", "nearest"]),
     ("lrp-composite", [], ["--composite", "epsilon-plus"]), ("deeplift", [], ["--baseline", "0.5"])],
)  # fmt: skip
def test_options_change_the_map(tmp_path, method, default, changed):
    """The option is not dropped on the way (the comparison above would pass with a default too)."""
    a, _ = written(tmp_path / "a", method, *default)
    b, _ = written(tmp_path / "b", method, *changed)
    assert np.abs(a - b).max() > 1e-3 * np.abs(a).max()


def test_old_alias_writes_under_its_own_name(digits, tmp_path):
    """--method gradcam (the name before the registry) is still accepted and keeps its folder."""
    net, x = digits
    maps, metas = written(tmp_path, "gradcam", folder="gradcam")
    assert_close(maps, mc.grad_cam(net, x), rtol=1e-4, what="gradcam")
    assert metas[0]["method"].startswith("Grad-CAM at block2_conv2_relu")


@pytest.mark.parametrize(
    "options, message",
    [(["--method", "lrp-composite", "--composite", "nope"], "argument --composite: invalid choice: 'nope'"),
     (["--method", "lrp-eps"], "argument --method: invalid choice: 'lrp-eps'"),
     (["--method", "integrated-gradients", "--baseline", "nan"], "expected a finite number, got 'nan'"),
     (["--method", "integrated-gradients", "--steps", "0"], "expected a positive integer, got 0"),
     (["--method", "integrated-gradients", "--quadrature", "riemann_trapezoid", "--steps", "1"],
      "--quadrature riemann_trapezoid needs --steps >= 2"),
     (["--method", "cam"], "CAM needs a network ending in GlobalAvgPool2D -> Dense"),
     (["--method", "excitation", "--layer", "nope"], "unknown layer 'nope'")],
)  # fmt: skip
def test_bad_options_are_one_line_exit_2(tmp_path, options, message):
    out = tmp_path / "o"
    r = minicnn("attribute", "--count", "2", "--out", out, "--no-progress", *options, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.code == 2 and message in lines[-1], r.stderr
    assert "Traceback" not in r.stderr
    assert not (out / options[1]).exists()  # no map folder for a refused run
