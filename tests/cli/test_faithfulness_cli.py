"""``minicnn faithfulness``: the JSON AUCs, the CSV curves and the plots are the API's on the same
maps (the API is checked against Quantus and RISE in tests/tools/test_faithfulness_quantus.py); bad
input is one line and exit 2, with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import minicnn, ok
from PIL import Image

from minicnn.render.faithfulness import faithfulness_plot


def test_json_and_curves_are_the_api_results(shipped, tmp_path):
    import minicnn as mc
    from minicnn.cli.inputs import shipped_samples

    out = tmp_path / "out"
    r = ok("faithfulness", "--count", "2", "--methods", "gradient,gradient_x_input", "--metrics",
           "deletion,insertion,road_morf,region_morf", "--patch", "7", "--fractions", "0.2,0.5", "--out", out,
           "--json",
           "--no-progress")  # fmt: skip
    summary = json.loads(r.stdout)
    net = mc.load(shipped.DEFAULT_MODEL)
    images, _, _ = shipped_samples(2)
    x = mc.preprocess(images, "unit").astype(np.float32)
    y = np.asarray(net.forward(x)).argmax(axis=1)
    grad = np.asarray(mc.saliency(net, x, y, signed=True))  # (N, C, H, W) signed
    gxi = np.asarray(mc.saliency(net, x, y, signed=True, times_input=True))
    deletions = {}
    for method, a in (("gradient", grad), ("gradient_x_input", gxi)):
        maps = np.abs(a.astype(np.float64).sum(axis=1))
        expected = {
            "deletion": mc.deletion(net, x, maps, y),
            "insertion": mc.insertion(net, x, maps, y),
            "road_morf": mc.road(net, x, maps, y, fractions=[0.2, 0.5], noise=0.01, seed=0),
            "region_morf": mc.region_perturbation(net, x, maps, y, patch=7),
        }
        for metric, res in expected.items():
            assert summary["numbers"][f"{method} {metric} auc"] == pytest.approx(res.auc.mean(), abs=1e-9)
        deletions[{"gradient": "Gradient", "gradient_x_input": "Gradient x input"}[method]] = expected[
            "deletion"
        ]
    # one plot per metric; the deletion plot is the API's curves drawn (mean per method, AUC in the legend)
    figures = {Path(f["path"]).name: f["caption"] for f in summary["figures"]}
    assert sorted(figures) == [
        f"faithfulness_{m}.png" for m in ("deletion", "insertion", "region_morf", "road_morf")
    ]
    assert figures["faithfulness_deletion.png"].startswith("deletion: mean curve per method over 2 image(s)")
    drawn = np.asarray(Image.open(out / "faithfulness_deletion.png").convert("RGB"))
    assert np.array_equal(drawn, faithfulness_plot(deletions))
    lines = (out / "faithfulness-curves.csv").read_text().splitlines()
    assert lines[0] == "method,metric,image,fraction,value"
    deletion = [line.split(",") for line in lines[1:] if line.startswith("gradient,deletion,")]
    assert len(deletion) == 2 * 29  # two images, 28 steps of 28 pixels and the unperturbed point
    first = mc.deletion(net, x, np.abs(grad.astype(np.float64).sum(axis=1)), y).curves[0]
    np.testing.assert_allclose([float(v[-1]) for v in deletion[:29]], first, rtol=1e-7)
    assert (out / "faithfulness.txt").read_text().startswith("AUC of the target's probability")
    assert not list(out.glob(".*"))  # no temporary file left


@pytest.mark.parametrize(
    "args, words",
    [
        (["--metrics", "deletion,auc"], "unknown metric 'auc'"),
        (["--methods", "gradient,nope"], "unknown method 'nope'"),
        (["--fractions", "0.5,1.0"], "--fractions '0.5,1.0': expected comma-separated numbers in [0, 1)"),
        (["--step", "785"], "--step 785 exceeds the image's 784 pixels"),
        (["--patch", "5"], "--patch 5 must divide the image's 28x28 pixels"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(shipped, tmp_path, args, words):
    out = tmp_path / "out"
    r = minicnn("faithfulness", "--count", "1", "--out", out, *args)
    assert r.code == 2, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())
