"""``verify`` with the relevance methods of the registry (lrp-epsilon, lrp-zplus, lrp-alpha1beta0,
lrp-composite, deeplift) against maps the frameworks make: Zennit's LRP (its own hooks, the output
relevance one-hot times the score) and Captum's DeepLift, float64, on a torchvision-layout VGG file.
Each framework map agrees with the method of its name and not with a neighbouring one (the check can
fail); one run goes through the command line (``minicnn verify --method lrp-zplus --map``)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch_models as tm
from support import oracle
from test_lrp_zennit import uniform_composite, zennit_composite, zennit_map, zennit_rule

import minicnn as mc
from minicnn.tools.verify import verify

TARGETS = [1, 7]
REPO = Path(__file__).resolve().parents[2]


def minicnn(*args):
    """``python -m minicnn.cli.main ARGS``: the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TQDM_DISABLE="1")
    cmd = [sys.executable, "-m", "minicnn.cli.main", *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """(minicnn net float64, torch model float64, images (2, 3, 32, 32), the .pth path)."""
    torch = oracle("torch")
    model = tm.torchvision_vgg(bn=False, side=2, seed=4)
    path = tm.save(model, tmp_path_factory.mktemp("verify_lrp") / "vgg.pth", "zip")
    net = mc.load(path).astype(np.float64)
    x = (tm.images(2, 32, seed=5).transpose(0, 3, 1, 2) - 128.0) / 64.0
    return net, model.to(torch.float64), x, path


def framework_map(method, model, x, targets=TARGETS):
    """The framework's map for the registry's ``method`` with the registry's default options."""
    if method == "deeplift":
        torch = oracle("torch")
        from captum.attr import DeepLift

        xt = torch.from_numpy(np.ascontiguousarray(x))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out = DeepLift(model).attribute(xt, baselines=torch.zeros_like(xt), target=list(targets))
        return out.detach().numpy()
    if method == "lrp-composite":  # the registry's default composite
        return zennit_map(model, x, zennit_composite("epsilon-plus-flat", x), False, np.array(targets))
    rule = {"lrp-epsilon": "epsilon", "lrp-zplus": "zplus", "lrp-alpha1beta0": "alpha1beta0"}[method]
    return zennit_map(model, x, uniform_composite(zennit_rule(rule)), False, np.array(targets))


# each method with a neighbour whose map differs on this network
NEIGHBOURS = {
    "lrp-epsilon": "lrp-zplus",
    "lrp-zplus": "lrp-epsilon",
    "lrp-alpha1beta0": "lrp-composite",
    "lrp-composite": "lrp-zplus",
    "deeplift": "lrp-zplus",
}


@pytest.mark.parametrize("method", list(NEIGHBOURS))
def test_framework_map_agrees_with_its_method_only(case, method):
    net, model, x, _ = case
    reference = framework_map(method, model, x)
    result = verify(net, x, reference, method, TARGETS, tol=1e-6, diagnose=False)
    assert result.agree and result.max_rel_diff <= 1e-6, result.lines()
    other = verify(net, x, reference, NEIGHBOURS[method], TARGETS, tol=1e-6, diagnose=False)
    assert not other.agree and other.max_rel_diff > 1e-3, (method, other.max_rel_diff)


def test_command_line_lrp_zplus_against_zennit(case, tmp_path):
    """``minicnn verify --float64 --method lrp-zplus --map`` on Zennit's z+ map agrees (exit 0), and
    names the epsilon map's disagreement (exit 1)."""
    net, model, x, path = case
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "zplus.npy", framework_map("lrp-zplus", model, x, [3, 3]))
    np.save(tmp_path / "epsilon.npy", framework_map("lrp-epsilon", model, x, [3, 3]))

    def run(name):
        return minicnn("verify", "--weights", path, "--input", tmp_path / "x.npy", "--float64",
                       "--method", "lrp-zplus", "--target", "3", "--map", tmp_path / f"{name}.npy",
                       "--tol", "1e-6", "--out", tmp_path / name, "--no-progress")  # fmt: skip

    good, bad = run("zplus"), run("epsilon")
    assert good.returncode == 0 and "AGREE" in good.stdout and "DISAGREE" not in good.stdout, (
        good.stdout + good.stderr
    )
    assert bad.returncode == 1 and "DISAGREE" in bad.stdout, bad.stdout + bad.stderr
