"""``minicnn equivalence`` as a subprocess: --float64, --input, --section, --json, a ResNet file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import oracle

import minicnn as mc
from minicnn.paths import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO), TQDM_DISABLE="1")
    cmd = [sys.executable, "-m", "minicnn.cli.main", "equivalence", *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def as_json(r):
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def rows_of(summary, section):
    (found,) = [s for s in summary["tables"]["sections"] if s["name"] == section]
    return found["rows"]


def test_json_float64_on_the_shipped_gap_model(tmp_path):
    summary = as_json(run_cli("--json", "--float64", "--section", "cam", "--section", "ig",
                              "--weights", "mnist_gap", "--out", tmp_path))  # fmt: skip
    assert summary["command"] == "equivalence" and summary["model"].endswith("mnist_gap.h5")
    assert len(summary["inputs"]) == 4 and [t["index"] for t in summary["targets"]] == [0, 1, 2, 3]
    settings = summary["settings"]
    assert (
        settings["float64"] is True
        and settings["dtype"] == "float64"
        and settings["sections"] == ["cam", "ig"]
    )
    assert [s["name"] for s in summary["tables"]["sections"]] == ["cam", "ig"]
    (cam,) = rows_of(summary, "cam")
    (ig,) = rows_of(summary, "ig")  # the shipped GAP model has no biases: IG = gradient x input
    for row in (cam, ig):
        assert row["holds"] is True and row["gap"] <= 1e-12 and row["bound"] == 1e-12, row
    assert summary["numbers"]["failing rows"] == 0
    text = (tmp_path / "equivalence_sections.csv").read_text()
    assert text.splitlines()[0].startswith("section,row,left,right,gap") and "cam," in text


def test_input_file_float64(tmp_path):
    """--input: the array is the batch (no pictures); the JSON's rows are mc.equivalence's on it."""
    net = mc.load(DEFAULT_MODEL).astype(np.float64)
    x = np.random.default_rng(2).uniform(0, 1, (2, 1, 28, 28))
    np.save(tmp_path / "batch.npy", x)
    out = tmp_path / "out"
    summary = as_json(run_cli("--json", "--float64", "--input", tmp_path / "batch.npy", "--target", "3",
                              "--section", "simonyan", "--section", "deeplift", "--out", out))  # fmt: skip
    assert summary["inputs"] == ["batch_0", "batch_1"] and summary["settings"]["input"].endswith("batch.npy")
    assert [t["index"] for t in summary["targets"]] == [3, 3]
    assert not list(out.glob("*.png"))  # no picture of network input
    res = mc.equivalence(net, x, [3, 3], sections=["simonyan", "deeplift"], progress=False)
    network, copy = rows_of(summary, "deeplift")
    expected = res.section("deeplift").rows
    assert network["gap"] == pytest.approx(expected[0].gap, rel=1e-9) and "no biases" in network["failed"]
    assert copy["holds"] is True and copy["gap"] <= 1e-12
    relus = [r for r in rows_of(summary, "simonyan") if r["expected"] is not None]
    assert relus and all(r["expected"] == r["measured"] and r["holds"] for r in relus)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--section", "lrp-9"], "unknown equivalence section 'lrp-9'"),
        (["--input", "X", "--image", "Y"], "give --image or --input, not both"),
        (["--input", "BAD"], "expected a float (N, C, H, W) or (C, H, W) array"),
        (["--input", "TEXT"], "not a readable .npy file"),
    ],
)
def test_bad_options_are_one_line(tmp_path, args, needle):
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 28, 28)))
    np.save(tmp_path / "bad.npy", np.zeros((1, 1, 28, 28), dtype=np.int64))
    (tmp_path / "text.npy").write_text("not an array")
    (tmp_path / "y.png").write_bytes(b"")
    names = {
        "X": tmp_path / "x.npy",
        "Y": tmp_path / "y.png",
        "BAD": tmp_path / "bad.npy",
        "TEXT": tmp_path / "text.npy",
    }
    out = tmp_path / "out"
    r = run_cli(*[names.get(a, a) for a in args], "--out", out)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], r.stderr
    assert not out.exists()


def test_resnet18_file_float64(tmp_path):
    """A torchvision-layout ResNet-18 .pth (a graph, BatchNorm folded) at 64 x 64, every section."""
    torch = oracle("torch")
    from resnet_torch import torch_resnet

    model = torch_resnet("resnet18", classes=10)
    torch.save(model.state_dict(), tmp_path / "resnet18.pth")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((1, 3, 64, 64)))
    summary = as_json(run_cli("--json", "--float64", "--weights", tmp_path / "resnet18.pth",
                              "--input", tmp_path / "x.npy", "--out", tmp_path / "out"))  # fmt: skip
    names = [s["name"] for s in summary["tables"]["sections"]]
    from minicnn.tools.equivalence import SECTION_NAMES

    assert names == list(SECTION_NAMES)
    assert summary["numbers"]["failing rows"] == 0
    for section in ("deconvnet", "guided", "cam", "lrp0"):
        rows = rows_of(summary, section)
        assert rows and all(r["holds"] is True and r["gap"] <= 1e-12 for r in rows), section
    refused = [r for r in rows_of(summary, "zplus") if r["gap"] is None]
    assert refused and all("excitation" in r["failed"] for r in refused)


def test_torchvision_vgg16_layout_file_and_photo_float64(tmp_path):
    """The command of the issue's "done when", on VGG16's torchvision layout at 1/16 of its widths
    (biases, AdaptiveAvgPool2d((7, 7)), the classifier's dropouts) and a PNG photo read with the
    file's torch preprocessing (signed pixels): every section prints; every row whose conditions
    hold holds at <= 1e-12; the biases' rows show their gap; z+ equals excitation backprop above
    the first convolution (the only layer reading signed inputs) on the bias-free copy."""
    oracle("torch")
    import torch_models as tm
    from PIL import Image

    from minicnn.tools.equivalence import SECTION_NAMES

    model = tm.torchvision_vgg(tm.VGG16_NARROW, bn=False, hidden=64, classes=1000, side=7)
    weights = tm.save(model, tmp_path / "vgg16.pth", "zip")
    Image.fromarray(tm.images(1, 96, seed=3)[0].astype(np.uint8)).save(tmp_path / "photo.png")
    r = run_cli("--float64", "--weights", weights, "--image", tmp_path / "photo.png", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    for name in SECTION_NAMES[1:]:  # every section printed (the Simonyan table has its own title)
        assert f"[{name}]" in r.stdout, name
    summary = as_json(run_cli("--json", "--float64", "--weights", weights, "--image", tmp_path / "photo.png",
                              "--out", tmp_path / "j"))  # fmt: skip
    assert [s["name"] for s in summary["tables"]["sections"]] == list(SECTION_NAMES)
    assert summary["settings"]["dtype"] == "float64" and summary["numbers"]["failing rows"] == 0
    claims = [r for s in summary["tables"]["sections"] for r in s["rows"] if r["holds"] is not None]
    assert len(claims) > 100 and all(r["holds"] for r in claims)
    assert all(r["gap"] <= 1e-12 for r in claims if r["bound"]), [r for r in claims if r["gap"] > 1e-12]
    for section in ("deeplift", "ig"):
        network, copy = rows_of(summary, section)
        assert "no biases" in network["failed"] and network["gap"] > 1e-2, network
        assert copy["holds"] is True and copy["gap"] <= 1e-12, copy
    rows = {r["name"]: r for r in rows_of(summary, "zplus")}
    assert "nonnegative inputs" in rows["bias-free copy"]["failed"]  # the photo's signed pixels
    assert "no biases" in rows["network, above features.0"]["failed"]
    above = rows["bias-free copy, above features.0"]
    assert above["holds"] is True and above["gap"] <= 1e-12, above
