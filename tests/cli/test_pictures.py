"""Pictures that say what made them: saliency figures and files name the method (SmoothGrad,
gradient x input, signed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minicnn.cli.cmd_demo import command_args


def run_command(name, **options):
    run, args = command_args(name, **options)
    return run(args)


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
