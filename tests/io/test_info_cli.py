"""``minicnn info FILE`` as a user runs it: a subprocess, its output and exit code."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
from io_helpers import small_net
from support import oracle

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


def columns(row: str) -> list[str]:
    """The cells of a table row: columns are two or more spaces apart."""
    import re

    return re.split(r" {2,}", row.strip())


def long_named_onnx(path):
    """An ONNX graph with torch.onnx's node names (``/features/features.0/Conv``), longer than any
    fixed column: Conv 3 -> 2 (3x3, pad 1) -> Relu -> GlobalAveragePool -> Flatten -> Gemm 2 -> 3."""
    from onnx import TensorProto, helper, numpy_helper

    onnx = oracle("onnx")
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("w", (2, 3, 3, 3)), ("b", (2,)), ("fw", (3, 2)), ("fb", (3,)))]  # fmt: skip
    N = helper.make_node
    nodes = [
        N(
            "Conv",
            ["x", "w", "b"],
            ["c"],
            name="/features/features.0/Conv",
            kernel_shape=[3, 3],
            pads=[1] * 4,
        ),
        N("Relu", ["c"], ["r"], name="/features/features.1/Relu"),
        N("GlobalAveragePool", ["r"], ["g"], name="/avgpool/GlobalAveragePool"),
        N("Flatten", ["g"], ["f"], name="/Flatten"),
        N("Gemm", ["f", "fw", "fb"], ["y"], name="/classifier/classifier.6/Gemm", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits,
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_info_columns_never_merge_with_long_names(tmp_path):
    """ONNX layer names are longer than any fixed column: name, kind, shape and count must still be
    separate cells (the table used to print ``/features/features.0/ConvConv2D``)."""
    run = info(long_named_onnx(tmp_path / "long.onnx"))
    assert run.returncode == 0, run.stderr
    rows = {cells[0]: cells for cells in map(columns, run.stdout.splitlines()) if cells[0].startswith("/")}
    conv = rows.get("/features/features.0/Conv")
    assert conv == ["/features/features.0/Conv", "Conv2D", "(2, 8, 8)", f"{2 * 3 * 3 * 3 + 2:,}"], rows
    assert rows["/features/features.1/Relu"][1:] == ["ReLU", "(2, 8, 8)", "0"]
    assert all(len(cells) == 4 for cells in rows.values()), rows


def test_summary_columns_without_an_input_size():
    """No input size known: info prints names and kinds only, two spaces apart however long."""
    from minicnn.cli import cmd_info

    net = mc.Sequential([mc.Dense(2, 3, name="/classifier/classifier.0/Gemm_with_a_long_name")], seed=0)
    table = cmd_info.layer_table(net, None)
    assert [columns(line) for line in table.splitlines()] == [
        ["/classifier/classifier.0/Gemm_with_a_long_name", "Dense"]
    ]


def test_info_prints_a_stored_mean_image_as_its_shape_and_range(tmp_path):
    """The shipped models store a 784-number mean image: info prints one short line about it."""
    from minicnn import paths

    run = info(paths.DEFAULT_MODEL)
    assert run.returncode == 0, run.stderr
    (line,) = [line for line in run.stdout.splitlines() if line.strip().startswith("mean_image")]
    mean = np.asarray(mc.load(paths.DEFAULT_MODEL).meta["mean_image"], dtype=np.float64)
    assert columns(line) == [
        "mean_image",
        f"array (1, 28, 28), min {mean.min():.4g}, mean {mean.mean():.4g}, max {mean.max():.4g}",
    ]
    assert len(line) < 100 and len(run.stdout) < 4000  # it printed 784 numbers


def test_info_help_names_every_format_read_and_checks_input_size_first(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "minicnn.cli.main", "info", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = " ".join(run.stdout.split())
    for fmt in ("minicnn .h5", "Keras .h5", ".pth", ".safetensors", ".onnx"):
        assert fmt in text, fmt
    # a bad --input-size is refused before the (missing) file is looked at
    run = info(tmp_path / "missing.h5", "--input-size", "0")
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "--input-size" in run.stderr and "positive integer" in run.stderr and "missing" not in run.stderr
