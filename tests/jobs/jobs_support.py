"""Helpers of the job tests (a plain module: ``from conftest import`` is ambiguous when several
test folders have a conftest.py): the layer and options of the top-9 runs, running ``minicnn topk``
in this process, and comparing its arrays."""

from __future__ import annotations

import numpy as np

# a layer after a pool (its receptive field crosses a stride), 4 maps, 10 shards of 50 images
LAYER = "block2_conv1_relu"
TOPK_ARGS = ["--layer", LAYER, "--channels", "0", "3", "7", "12", "--k", "9", "--shard-size", "50",
             "--batch-size", "25", "--save-arrays", "--no-progress"]  # fmt: skip


def run_topk(folder, out, *extra):
    """``minicnn topk`` in this process; returns (exit code, the --save-arrays .npz as a dict)."""
    from minicnn.cli.main import main

    code = main(["topk", "--image", str(folder), "--out", str(out), *TOPK_ARGS, *map(str, extra)])
    path = out / f"{LAYER}_top9.npz"
    if code != 0 or not path.is_file():
        return code, None
    with np.load(path) as data:
        return code, {k: data[k] for k in data.files if k != "meta"}


def assert_same(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].shape == b[name].shape, name
        assert np.array_equal(a[name], b[name]), f"{name} differs"
