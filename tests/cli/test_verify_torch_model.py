"""``minicnn verify --torch-model FILE.py:FUNCTION``: the user's own torch model, built by their code
in a child process, is the reference; Captum, Zennit and pytorch-grad-cam run on it. A file that
raises, returns something else or names no function is one line, exit 2.

The user's file here builds tests/torch_models.torchvision_vgg (seeded, so the same weights as the
.pth file minicnn reads); float64 on both sides, so correct maps agree to ~1e-12."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch_models as tm
from cli_helpers import minicnn, ok
from support import oracle

import minicnn as mc

SIZE = 32
TESTS = Path(__file__).resolve().parents[1]

USER_FILE = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import torch
import torch_models as tm


def vgg():
    return tm.torchvision_vgg(bn=False)


def vgg_functional_relu():
    \"\"\"The same model with the classifier's ReLUs called as F.relu in forward.\"\"\"
    model = tm.torchvision_vgg(bn=False)

    class Functional(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.relu(x)

    model.classifier[1] = Functional()
    model.classifier[4] = Functional()
    return model


def counting():
    # the model, its output multiplied by the number of calls so far (a buffer updated in forward)
    model = tm.torchvision_vgg(bn=False)

    class Counting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("calls", torch.zeros(()))

        def forward(self, x):
            self.calls += 1
            return self.model(x) * self.calls

    return Counting()


def broken():
    raise ValueError("weights file missing")


def not_a_model():
    return 42
"""


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    oracle("torch")
    folder = tmp_path_factory.mktemp("torch_model")
    weights = tm.save(tm.torchvision_vgg(bn=False), folder / "vgg.pth", "zip")
    np.save(folder / "x.npy", mc.preprocess(tm.images(2, SIZE, seed=3), "torch"))
    (folder / "mine.py").write_text(USER_FILE)
    return folder, weights


def run(case, function, *args, json_summary=True):
    folder, weights = case
    spec = f"{folder / 'mine.py'}:{function}"
    return minicnn("verify", "--weights", weights, "--input", folder / "x.npy", "--target", "3", "--float64",
                   "--tol", "1e-9", "--torch-model", spec, "--out", folder / "o",
                   *(["--json"] if json_summary else []), *args)  # fmt: skip


def summary(result):
    return json.loads(result.stdout[result.stdout.index("{") :])


@pytest.mark.parametrize("method", ["gradient", "guided", "deconvnet", "grad_cam"])
def test_captum_on_the_users_model_agrees(case, method):
    oracle("captum")
    r = run(case, "vgg", "--against", "captum", "--method", method)
    assert r.code == 0, r.stdout + r.stderr
    assert summary(r)["diagnosis"] == [] and "on --torch-model" in summary(r)["settings"]["reference"]


@pytest.mark.parametrize("method", ["gradient", "saliency", "guided", "deconvnet"])
def test_zennit_on_the_users_model_agrees(case, method):
    if importlib.util.find_spec("zennit") is None:
        oracle("zennit")  # skipped on a user's machine without it, a failure in CI
    r = run(case, "vgg", "--against", "zennit", "--method", method)
    assert r.code == 0, r.stdout + r.stderr


def test_grad_cam_library_scales_each_map(case):
    """pytorch-grad-cam's GradCAM scales each image's map to 0..1: named "scale", per image."""
    if importlib.util.find_spec("pytorch_grad_cam") is None:
        oracle("pytorch_grad_cam")  # skipped without grad-cam, a failure in CI
    r = run(case, "vgg", "--against", "grad-cam", "--method", "grad_cam", "--tol", "1e-5")
    assert r.code == 1, r.stderr
    first = summary(r)["diagnosis"][0]
    assert first["cause"] == "scale" and "normalised per image" in first["detail"], summary(r)["diagnosis"]


def test_grad_cam_library_guided_agrees_one_image_per_call(case):
    if importlib.util.find_spec("pytorch_grad_cam") is None:
        oracle("pytorch_grad_cam")  # skipped without grad-cam, a failure in CI
    r = run(case, "vgg", "--against", "grad-cam", "--method", "guided")
    assert r.code == 0, r.stdout + r.stderr
    assert summary(r)["settings"]["layout"] == "NHWC"


def test_f_relu_in_the_users_model_is_named(case):
    """Captum's GuidedBackprop on the user's model whose classifier calls F.relu: its hooks miss
    those ReLUs, and verify names them."""
    oracle("captum")
    r = run(case, "vgg_functional_relu", "--against", "captum", "--method", "guided")
    assert r.code == 1, r.stderr
    first = summary(r)["diagnosis"][0]
    assert first["cause"] == "unhooked-relu" and "classifier.1, classifier.4" in first["detail"]


@pytest.mark.parametrize(
    ("function", "expected"),
    [("broken", "vgg_broken raised ValueError: weights file missing"),
     ("not_a_model", "returned int, expected a torch.nn.Module"),
     ("absent", "has no function absent")],
)  # fmt: skip
def test_a_bad_user_file_is_one_line(case, function, expected):
    r = run(case, function, "--against", "captum", "--method", "gradient", json_summary=False)
    expected = expected.replace("vgg_broken", "mine.py:broken")
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1 and expected in r.stderr, r.stderr


def test_spec_and_framework_checked_before_the_model(case):
    folder, weights = case
    r = minicnn("verify", "--weights", weights, "--input", folder / "x.npy", "--torch-model", "mine.py",
                "--against", "captum", "--out", folder / "o")  # fmt: skip
    assert r.code == 2 and "FILE.py:FUNCTION" in r.stderr
    r = minicnn("verify", "--weights", weights, "--input", folder / "x.npy", "--against", "zennit",
                "--out", folder / "o")  # fmt: skip
    assert r.code == 2 and "--torch-model" in r.stderr
    r = ok("verify", "--weights", weights, "--input", folder / "x.npy", "--help")
    assert "--torch-model" in r.stdout


def test_repeat_flags_a_model_that_keeps_state(case):
    """A model whose forward updates a buffer (its output grows with every call, as a module that
    counts calls or keeps a running statistic in forward does): the second identical call's map is
    twice the first, --repeat flags it (exit 1) and names the second call's map "scale x2"."""
    oracle("captum")
    r = run(case, "counting", "--against", "captum", "--method", "gradient", "--repeat")
    assert r.code == 1, r.stdout + r.stderr
    assert (
        "STATEFUL" in r.stderr and "second call: explained: scale: the map is minicnn's times 2" in r.stderr
    )
    assert summary(r)["numbers"]["repeat difference"] == pytest.approx(1.0, abs=1e-9)


def test_repeat_finds_no_state_in_captum(case):
    oracle("captum")
    r = run(case, "vgg", "--against", "captum", "--method", "guided", "--repeat")
    assert r.code == 0, r.stdout + r.stderr
    numbers = summary(r)["numbers"]
    assert numbers["repeat difference"] == 0 and numbers["class difference"] > 1e-3


def test_repeat_flags_grad_cam_guided_on_one_tensor(case):
    """pytorch-grad-cam's GuidedBackpropReLUModel called twice on one input tensor (issue #401 of
    that library): it sets requires_grad on the tensor and reads .grad without zeroing it, so the
    second identical call returns the sum of both gradients, twice the first map. --repeat calls it
    as a user's loop does (one tensor per image, call after call): STATEFUL, exit 1, the second map
    named "scale x2"; the first call alone agrees with minicnn (1e-9)."""
    if importlib.util.find_spec("pytorch_grad_cam") is None:
        oracle("pytorch_grad_cam")  # skipped without grad-cam, a failure in CI
    r = run(case, "vgg", "--against", "grad-cam", "--method", "guided", "--repeat")
    assert r.code == 1, r.stdout + r.stderr
    assert (
        "STATEFUL" in r.stderr and "second call: explained: scale: the map is minicnn's times 2" in r.stderr
    )
    numbers = summary(r)["numbers"]
    assert numbers["repeat difference"] == pytest.approx(1.0, abs=1e-9)
    assert numbers["max relative difference"] < 1e-9 and summary(r)["diagnosis"] == []
