"""``minicnn demo`` with no arguments: every tool runs, index.html links only files that exist and
shows pictures for every section, and the printed path is the report."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import ok, png_size

from minicnn.cli.cmd_demo import STEPS


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.headings, self._in_h2 = [], [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if "href" in attrs:
            self.links.append(attrs["href"])
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)
            self._in_h2 = False


def test_demo_writes_a_complete_report(shipped, tmp_path):
    r = ok("demo", cwd=tmp_path)  # no arguments at all: the default out-folder in the cwd
    out = tmp_path / "minicnn-out" / "demo"
    index = out / "index.html"
    assert f"open {index.resolve()}" in r.stdout
    page = Page()
    text = index.read_text(encoding="utf-8")
    page.feed(text)
    assert page.headings == [step[2] for step in STEPS]
    assert "not available" not in text and "failed" not in text
    for link in page.links:
        assert link.startswith("#"), f"external or file link {link}"
    assert page.images, "the report shows no pictures"
    for src in page.images:
        path = out / src
        assert not Path(src).is_absolute() and path.is_file(), src
        assert min(png_size(path)) >= 28
    folders = {Path(src).parts[0] for src in page.images}
    assert folders == {step[0] for step in STEPS}  # every tool draws, equivalence its three modes
    assert "<pre>" in text  # the measured equivalence table
    assert (out / "log.txt").is_file()


# -- the demo on a model of another input size, the estimate, --tools ----------------------------------
def test_demo_skips_the_steps_whose_shipped_inputs_do_not_fit_the_model(shipped, tmp_path):
    """A copy of the shipped digit VGG under another name: its dense top fixes the input at 28x28, so
    localisation's 84x84 clutter canvases cannot go through it (32 x 21 x 21 = 14112 features reach
    fc1, which takes 32 x 7 x 7 = 1568). The step is skipped with that reason, printed and on the
    page; the other steps run; the exit code is 0."""
    import shutil

    model = tmp_path / "copy.h5"
    shutil.copy(shipped.DEFAULT_MODEL, model)
    out = tmp_path / "demo"
    r = ok("demo", "--weights", model, "--tools", "saliency,localize", "--out", out)
    reason = "expected 1568 input features, got 14112"
    (line,) = [s for s in r.stdout.splitlines() if "localize skipped" in s]
    assert "84x84" in line and reason in line and "copy.h5" in line and "--image" in line
    assert "1 tools in" in r.stdout and "1 skipped" in r.stdout
    text = (out / "index.html").read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    assert page.headings == [STEPS[0][2], STEPS[9][2]]  # saliency and localisation, in the demo's order
    assert "skipped: the shipped 84x84" in text and reason in text
    assert {Path(src).parts[0] for src in page.images} == {"saliency"}
    assert reason in (out / "log.txt").read_text(encoding="utf-8")


def test_demo_tools_are_checked_before_the_model_is_read(tmp_path):
    from cli_helpers import minicnn

    out = tmp_path / "out"
    r = minicnn("demo", "--tools", "saliency,nonsense", "--weights", tmp_path / "missing.h5", "--out", out)
    assert r.code == 2 and "--tools: unknown step 'nonsense'; expected 'all' or a comma" in r.stderr
    assert "missing.h5" not in r.stderr and not out.exists()
    assert "--tools is empty" in minicnn("demo", "--tools", ",", "--out", out).stderr


def _demo_args(out, **options):
    import argparse

    return argparse.Namespace(
        **{"out": out, "device": "cpu", "seed": 0, "weights": None, "image": None, "tools": "all",
           "no_progress": True, **options}
    )  # fmt: skip


@pytest.fixture
def recorded(monkeypatch):
    """Every step's ``run`` replaced by one that records its arguments and draws nothing."""
    import importlib

    from minicnn.cli.report import Report

    calls = {}

    def fake(command):
        def run(args):
            calls[command] = args
            return Report(command)

        return run

    for command, *_ in STEPS:
        monkeypatch.setattr(importlib.import_module(f"minicnn.cli.cmd_{command}"), "run", fake(command))
    return calls


def _fixed_pass(monkeypatch, seconds: float, first: float, compiled: bool):
    from minicnn.cli import estimate

    timed = estimate.PassTime(seconds, first, compiled)
    monkeypatch.setattr(estimate, "measure_pass", lambda net, shape=None: timed)


def test_demo_estimate_is_the_measured_pass_times_each_tools_passes(
    shipped, recorded, monkeypatch, tmp_path, capsys
):
    """With one pass fixed at 10 ms: the digit demo's class models are 10 classes x 40 steps = 400
    passes, activation maximisation 8 units x 30 steps = 240 (the first 8 feature maps of the last
    rectified conv layer, which has at least 8): 6.4 s, printed before any tool runs. A warm run
    (kernels in Numba's cache) says nothing about compiling."""
    import minicnn as mc
    from minicnn.cli import cmd_demo

    net = mc.load(shipped.DEFAULT_MODEL)
    assert len(net.meta["class_names"]) == 10
    steps = {command: options["steps"] for command, options, *_ in STEPS if "steps" in options}
    assert steps["classmodel"] == 40 and steps["maximize"] == 30
    _fixed_pass(monkeypatch, 0.01, 0.011, compiled=False)
    report = cmd_demo.run(_demo_args(tmp_path / "demo", tools="maximize,classmodel"))
    assert list(recorded) == ["classmodel", "maximize"]  # the demo's order, whatever the list's
    assert report.numbers["estimated seconds"] == pytest.approx((10 * 40 + 8 * 30) * 0.01)
    printed = capsys.readouterr().out
    assert "estimated 6.4 s (classmodel 4.0 s, maximize 2.4 s)" in printed and "10 ms" in printed
    assert "compiling" not in printed
    assert printed.index("estimated") < printed.index("tools in")


def test_demo_says_when_it_compiles_and_shortens_the_optimisation_on_large_inputs(
    recorded, monkeypatch, tmp_path, capsys
):
    """A first run (Numba's cache empty, the first pass 5 s) prints the compile note with its
    duration; a model with 3x128x128 inputs (LARGE or more) gets the demo's short step counts, said
    before the tools run, passed to them and counted in the estimate."""
    import minicnn as mc
    from minicnn.cli import cmd_demo

    net = mc.Sequential(
        [mc.Conv2D(3, 4, 3, padding=1), mc.ReLU(), mc.MaxPool2D(2), mc.GlobalAvgPool2D(), mc.Dense(4, 3)],
        seed=0, meta={"input_shape": [3, 128, 128], "preprocess": "caffe"},
    )  # fmt: skip
    model = mc.save(net, tmp_path / "wide.h5")
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(np.zeros((128, 128, 3), np.uint8)).save(photo)
    _fixed_pass(monkeypatch, 0.01, 5.01, compiled=True)
    args = _demo_args(tmp_path / "demo", tools="classmodel,maximize,invert", weights=model, image=photo)
    report = cmd_demo.run(args)
    printed = capsys.readouterr().out
    # 3 classes x 8 steps, 4 feature maps (relu_0 has 4) x 10 steps, 1 image x 2 layers (the pool and
    # the last ReLU) x 8 steps
    assert report.numbers["estimated seconds"] == pytest.approx((3 * 8 + 4 * 10 + 2 * 8) * 0.01)
    assert "compiling kernels, first run only (5.0 s)" in printed
    for command in ("classmodel", "maximize", "invert"):
        steps = cmd_demo.LARGE_OPTIONS[command]["steps"]
        assert recorded[command].steps == steps < 100
        assert f"{command} with --steps {steps} for wide.h5's 128x128 inputs" in printed


@pytest.mark.parametrize("cached", [True, False])
def test_measure_pass_asks_numbas_cache_whether_it_compiled(shipped, monkeypatch, cached):
    """The compile note follows Numba's cache (kernels.compiled.kernels_compiled), not the first
    call's time (on a busy machine a warm first call is slow too)."""
    import minicnn as mc
    from minicnn.cli.estimate import measure_pass
    from minicnn.kernels import compiled

    monkeypatch.setattr(compiled, "kernels_compiled", lambda: cached)
    timed = measure_pass(mc.load(shipped.DEFAULT_MODEL))
    assert timed.compiled is (not cached)
    assert 0 < timed.seconds and 0 < timed.first
