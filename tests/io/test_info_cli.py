"""``minicnn info FILE`` as a user runs it: a subprocess, its output and exit code."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
from io_helpers import small_net

import minicnn as mc


def info(*args):
    return subprocess.run(
        [sys.executable, "-m", "minicnn.cli.main", "info", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_info_minicnn_file(tmp_path):
    net = small_net()
    path = mc.save(net, tmp_path / "toy.h5")
    run = info(path)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "format   minicnn" in out
    for layer, shape in zip(net.layers, net.shapes(), strict=True):
        count = sum(v.size for v in layer.params.values())
        row = next(line for line in out.splitlines() if line.startswith(layer.name + " "))
        assert layer.kind in row and str(shape) in row and row.rstrip().endswith(f"{count:,}")
    assert f"{net.num_params():,}" in out
    assert "4 classes: a, b, c, d" in out and "preprocess       unit" in out
    assert "accuracy=0.5" in out


def test_info_input_size(tmp_path):
    path = mc.save(small_net(), tmp_path / "toy.h5")
    run = info(path, "--input-size", 32)
    assert run.returncode == 0 and "(6, 32, 32)" in run.stdout


def test_info_bad_files(tmp_path):
    (tmp_path / "text.h5").write_text("hello")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    for path, fragment in [
        (tmp_path / "text.h5", "not an HDF5 file"),
        (tmp_path / "other.h5", "unknown kind"),
        (tmp_path / "none.h5", "no such file"),
    ]:
        run = info(path)
        assert run.returncode == 2
        assert run.stderr.count("\n") == 1 and fragment in run.stderr and str(path) in run.stderr
        assert "Traceback" not in run.stderr
