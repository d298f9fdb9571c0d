"""``minicnn sanity``: the JSON numbers are the API's, the figures are written, bad input is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import minicnn, ok


def test_json_numbers_are_the_api_results(shipped, tmp_path):
    import minicnn as mc
    from minicnn.cli.inputs import shipped_samples

    out = tmp_path / "out"
    r = ok("sanity", "--count", "2", "--methods", "gradient,guided", "--tests", "cascade,pointing",
           "--pointing-count", "4", "--out", out, "--json", "--no-progress")  # fmt: skip
    summary = json.loads(r.stdout)
    net = mc.load(shipped.DEFAULT_MODEL)
    images, _, _ = shipped_samples(2)
    x = mc.preprocess(images, "unit").astype(np.float32)
    res = mc.randomization_test(net, x, "predicted", methods=["gradient", "guided"], cascade=True)
    verdicts = {v["method"]: v for v in summary["tables"]["sanity_verdicts"] if v["test"] == "cascade"}
    for m in ("gradient", "guided"):
        # the digits' maps are zero on half the pixels: the verdict reads the foreground
        assert verdicts[m]["measure"] == "spearman_fg" and verdicts[m]["protocol"] == "minicnn"
        assert verdicts[m]["tied"] == pytest.approx(res.similarity[m]["tied"][-1], abs=1e-9)
        assert verdicts[m]["tied"] > 0.25
        assert summary["numbers"][f"{m} cascade"] == pytest.approx(
            res.similarity[m]["spearman_fg"][-1], abs=1e-9
        )
    assert verdicts["gradient"]["verdict"] == "changed" and verdicts["guided"]["verdict"] == "alike"
    with np.load(shipped.WEIGHTS_DIR / "clutter.npz") as f:
        canvases = (f["images"][:4, None] / 255.0).astype(np.float32)
        boxes, labels = f["boxes"][:4], f["labels"][:4]
    gap = mc.load(shipped.GAP_MODEL)
    point = mc.pointing_game(gap, canvases, boxes, labels, ["gradient", "guided", "cam"])
    for m in ("gradient", "guided", "cam", "centre"):
        assert summary["numbers"][f"{m} pointing"] == pytest.approx(point.accuracy[m])
    pictures = [f for f in summary["figures"] if "cascade" in f["caption"]]
    assert len([f for f in pictures if "curve" not in f["path"]]) == 2  # one fig. 2 per image
    assert len([f for f in pictures if "curve" in f["path"]]) == 2  # the curves: abs and foreground
    assert (out / "sanity.txt").is_file()
    assert "Adebayo et al. 2018" in summary["tables"]["sanity"]
    assert "protocol: minicnn" in summary["tables"]["sanity"]


def test_protocol_and_order_options_reach_the_numbers(shipped, tmp_path):
    import minicnn as mc
    from minicnn.cli.inputs import shipped_samples

    r = ok("sanity", "--count", "2", "--methods", "gradient", "--tests", "independent",
           "--layers", "predictions,block1_conv1", "--protocol", "adebayo", "--order", "bottom-up",
           "--out", tmp_path / "out", "--json", "--no-progress")  # fmt: skip
    summary = json.loads(r.stdout)
    images, _, _ = shipped_samples(2)
    x = mc.preprocess(images, "unit").astype(np.float32)
    net = mc.load(shipped.DEFAULT_MODEL)
    res = mc.randomization_test(net, x, "predicted", ["gradient"], cascade=False, protocol="adebayo",
                                layers=["predictions", "block1_conv1"], order="bottom-up")  # fmt: skip
    assert res.layers == ["block1_conv1", "predictions"]  # from the input up
    assert summary["settings"]["protocol"] == "adebayo" and summary["settings"]["order"] == "bottom-up"
    cell = next(v for v in summary["tables"]["sanity_verdicts"] if v["test"] == "independent")
    assert cell["value"] == pytest.approx(float(np.mean(res.similarity["gradient"][cell["measure"]][1:])))
    text = (tmp_path / "out" / "sanity.txt").read_text()
    assert "protocol adebayo" in text and "independent randomisation, bottom-up" in text
    curves = [f for f in summary["figures"] if "curve" in f["path"]]
    assert len(curves) == 2 and all("protocol adebayo" in f["caption"] for f in curves)


def fails(*args, match: str):
    r = minicnn(*args)
    assert r.code == 2, f"exit {r.code}\n{r.stdout}\n{r.stderr}"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert match in lines[0], lines[0]
    return lines[0]


def test_bad_input(shipped, tmp_path):
    out = tmp_path / "out"
    line = fails("sanity", "--methods", "gradient,lrp", "--out", out, match="unknown method 'lrp'")
    assert "gradient_x_input" in line and "grad_cam" in line
    fails("sanity", "--methods", "cam", "--out", out, match="CAM needs a network ending in GlobalAvgPool2D")
    fails("sanity", "--tests", "cascade,nope", "--out", out, match="unknown test 'nope'")
    fails("sanity", "--protocol", "paper", "--out", out, match="invalid choice: 'paper'")
    fails("sanity-study", "--protocol", "paper", "--out", out, match="invalid choice: 'paper'")
    fails("sanity-study", "--order", "sideways", "--out", out, match="invalid choice: 'sideways'")
    fails("sanity", "--target", "12", "--out", out, match="out of range")
    line = fails("sanity", "--layers", "fc1,block1_pool", "--out", out, match="layer 'block1_pool'")
    assert "predictions, fc1, block2_conv2, block2_conv1, block1_conv2, block1_conv1" in line
    assert not out.exists()
