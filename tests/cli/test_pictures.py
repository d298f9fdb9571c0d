"""Pictures that say what made them: the class model's start is the one asked for (and the figure
names it), saliency figures and files name the method (SmoothGrad, gradient x input, signed), and
classmodel says how much work it is about to do before it starts."""

from __future__ import annotations

import json

import numpy as np
import pytest

import minicnn as mc
from minicnn.cli.cmd_demo import command_args


def run_command(name, **options):
    run, args = command_args(name, **options)
    return run(args)


def test_classmodel_start_zero_starts_at_zero(shipped, tmp_path, capsys):
    """--start zero on the shipped model (which stores meta["mean_image"]): the ascent starts at the
    zero input, not at the stored mean; --start auto starts at that mean. The shipped digit model
    is dead at black (every first-layer ReLU off), so the zero start does not move at all, as the
    command warns, while the mean start does."""
    mean = np.asarray(mc.load(shipped.DEFAULT_MODEL).meta["mean_image"], dtype=np.float32)
    assert mean.shape == (1, 28, 28) and mean.max() > 0.1
    starts, images = {}, {}
    for start in ("zero", "auto"):
        out = tmp_path / start
        report = run_command("classmodel", out=out, target="3", steps=3, start=start, save_arrays=True)
        saved = np.load(out / "classmodels_class3.npz")
        starts[start], images[start] = saved["start"], saved["image"]
        assert json.loads(str(saved["meta"]))["start"] == report.settings["start"]
        (caption,) = report.figures
        assert f"from {report.settings['start']}" in caption
    assert np.array_equal(starts["zero"], np.zeros((1, 1, 28, 28), np.float32))
    assert np.array_equal(starts["auto"], mean[None])
    assert np.array_equal(images["zero"], starts["zero"])  # dead at black: the image stays at zero
    assert np.abs(images["auto"] - starts["auto"]).max() > 1e-3
    printed = capsys.readouterr()
    assert "zero gradient at the zero input (black)" in printed.err
    assert "from the zero input (black)" in printed.out
    assert "from the model's mean image (meta['mean_image'])" in printed.out


def test_classmodel_states_its_work_before_it_starts(shipped, tmp_path, monkeypatch, capsys):
    """With one pass fixed at 50 ms: every class (10) x 200 steps = 2000 passes, 100 s, printed
    before the ascent's first step, with the way to shorten it."""
    from minicnn.cli import estimate

    monkeypatch.setattr(
        estimate, "measure_pass", lambda net, shape=None: estimate.PassTime(0.05, 0.05, False)
    )
    import minicnn.tools.classmodel as tool

    def stop(*args, **kwargs):
        raise KeyboardInterrupt  # the estimate must already be out when the ascent starts

    monkeypatch.setattr(tool, "run_ascent", stop)
    with pytest.raises(KeyboardInterrupt):
        run_command("classmodel", out=tmp_path)
    printed = capsys.readouterr().out
    assert "10 classes x 200 steps = 2000 forward + backward passes of one image" in printed
    assert "about 1 min 40 s at 50 ms a pass (measured)" in printed and "--steps N for less" in printed


@pytest.mark.parametrize(
    ("options", "part", "title"),
    [
        ({}, "saliency", "saliency (max_c |dS/dI|)"),
        ({"smoothgrad": 3}, "smoothgrad", "SmoothGrad of saliency over 3 noisy copies (max_c |dS/dI|)"),
        ({"times_input": True}, "saliency_x_input", "gradient x input (max_c |x dS/dI|)"),
        ({"smoothgrad": 2, "signed": True, "times_input": True}, "smoothgrad_signed_x_input",
         "SmoothGrad of gradient x input over 2 noisy copies (x dS/dI, signed)"),
    ],
)  # fmt: skip
def test_saliency_figures_and_files_name_their_method(shipped, tmp_path, options, part, title):
    report = run_command("saliency", out=tmp_path, save_arrays=True, target="7", **options)
    assert len(report.figures) == 4
    for caption, path in report.figures.items():
        assert path.stem.endswith(f"_{part}_class7"), path.name
        assert caption.startswith(f"{title} of "), caption
        meta = json.loads(str(np.load(path.with_suffix(".npz"))["meta"]))
        assert meta["method"] == title.split(" (")[0] and meta["smoothgrad"] == options.get("smoothgrad", 0)
