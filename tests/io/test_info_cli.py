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


# small_net's table worked out by hand (not asked of the network, whose answers info prints):
# input (3, 16, 16); conv_a 3 -> 6, 3x3, padding 1; pool 2; conv_b 6 -> 5, 3x1, stride 2:
# (8 - 3) // 2 + 1 = 3 rows, (8 - 1) // 2 + 1 = 4 columns; weights O*C*kh*kw plus O biases.
SMALL_NET_TABLE = [
    ("conv_a", "Conv2D", (6, 16, 16), 6 * 3 * 3 * 3 + 6),
    ("relu_a", "ReLU", (6, 16, 16), 0),
    ("pool_a", "MaxPool2D", (6, 8, 8), 0),
    ("conv_b", "Conv2D", (5, 3, 4), 5 * 6 * 3 * 1 + 5),
    ("relu_0", "ReLU", (5, 3, 4), 0),
    ("globalavgpool2d_0", "GlobalAvgPool2D", (5,), 0),
    ("dropout_0", "Dropout", (5,), 0),
    ("scores", "Dense", (4,), 5 * 4 + 4),
]


def test_info_minicnn_file(tmp_path):
    path = mc.save(small_net(), tmp_path / "toy.h5")
    run = info(path)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "format   minicnn" in out
    for name, kind, shape, count in SMALL_NET_TABLE:
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert kind in row and str(shape) in row and row.rstrip().endswith(f"{count:,}")
    assert f"{sum(count for *_, count in SMALL_NET_TABLE):,}" in out  # 287
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
