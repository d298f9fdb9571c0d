"""minicnn's HDF5 format stores graphs (each node's inputs) and names holding "/"."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.io.native import HEADER_ATTRS, header_sha256


def small_graph(seed=0):
    """conv -> relu -> (branch conv) -> add(relu, branch) -> relu -> gap -> dense, input (3, 8, 8)."""
    return mc.Graph(
        [
            mc.Conv2D(3, 4, 3, padding=1, name="conv"),
            mc.ReLU(name="relu"),
            (mc.Conv2D(4, 4, 3, padding=1, name="branch"), "relu"),
            (mc.Add(name="add"), ("relu", "branch")),
            mc.ReLU(name="out"),
            mc.GlobalAvgPool2D(name="gap"),
            mc.Dense(4, 3, name="fc"),
        ],
        seed=1,
        meta={"input_shape": [3, 8, 8]},
        dtype=np.float64,
    )


def images(n, size, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(dtype)


def test_resnet18_round_trip_is_bit_exact(tmp_path):
    net = mc.resnet18(seed=3, num_classes=10, input_size=64)
    path = mc.save(net, tmp_path / "r18.h5")
    back = mc.load(path)
    assert isinstance(back, mc.Graph)
    assert [la.name for la in back.layers] == [la.name for la in net.layers]
    assert back.inputs == net.inputs
    for (la, key, a), (lb, kb, b) in zip(net.parameters(), back.parameters()):
        assert (la.name, key) == (lb.name, kb) and a.dtype == b.dtype and np.array_equal(a, b)
    x = images(2, 64)
    assert np.array_equal(net.forward(x), back.forward(x))
    # the block's sum reads its branch and the shortcut, by name
    assert back.inputs["layer2.0.add"] == ("layer2.0.bn2", "layer2.0.downsample.1")


def test_chain_files_keep_their_format(tmp_path):
    chain = mc.Sequential([mc.Conv2D(3, 2, 3, name="c"), mc.ReLU(name="r")], seed=0)
    path = mc.save(chain, tmp_path / "chain.h5")
    with h5py.File(path, "r") as f:
        specs = json.loads(f.attrs["layers"])
        assert sorted(f) == ["params"]
    assert all(set(spec) == {"kind", "name", "config"} for spec in specs)
    assert type(mc.load(path)) is mc.Sequential


def test_small_graph_round_trip_float64(tmp_path):
    net = small_graph()
    back = mc.load(mc.save(net, tmp_path / "g.h5"))
    assert back.dtype == np.float64 and back.inputs == net.inputs
    x = images(3, 8, dtype=np.float64)
    assert np.array_equal(net.forward(x), back.forward(x))


def rewrite_layers(path, change):
    """Apply ``change`` to the parsed "layers" attribute and re-sign the header, so that only the
    graph check can refuse the file."""
    with h5py.File(path, "r+") as f:
        specs = json.loads(f.attrs["layers"])
        change({spec["name"]: spec for spec in specs})
        f.attrs["layers"] = np.bytes_(json.dumps(specs).encode())
        values = {}
        for key in HEADER_ATTRS:
            value = f.attrs[key]
            values[key] = value.decode() if isinstance(value, bytes) else str(value)
        f.attrs["header_sha256"] = np.bytes_(header_sha256(values).encode())


def set_inputs(name, reads):
    def change(specs):
        specs[name]["inputs"] = reads

    return change


def drop_inputs(name):
    def change(specs):
        del specs[name]["inputs"]

    return change


@pytest.mark.parametrize(
    "change, expected",
    [
        (set_inputs("relu", ["out"]), r"graph node 'relu' is on a cycle: it reads 'out'"),
        (set_inputs("add", ["relu", "nowhere"]), r"graph node 'add' reads 'nowhere', which is not a node"),
        (
            set_inputs("branch", ["evil\x1b[2J"]),
            r"graph node 'branch' reads 'evil\\x1b\[2J', which is not a node",
        ),
        (set_inputs("add", ["input", "branch"]), r"layer add \(Add\): inputs of different shapes do not add"),
        (set_inputs("add", ["relu"]), r"graph node 'add' takes two or more inputs, given 1"),
        (set_inputs("branch", ["relu", "conv"]), r"graph node 'branch' takes one input, given 2"),
        (set_inputs("fc", ["relu"]), r"graph node 'gap': its output is never read"),
        (set_inputs("fc", "gap"), r"layer 'fc': expected 'inputs' to be a non-empty list of node names"),
        (set_inputs("fc", []), r"layer 'fc': expected 'inputs' to be a non-empty list of node names"),
        (
            drop_inputs("fc"),
            r"layer 'fc': expected 'inputs' to be a non-empty list of node names, found None",
        ),
    ],
)
def test_crafted_graph_files_are_refused(tmp_path, change, expected):
    path = mc.save(small_graph(), tmp_path / "g.h5")
    rewrite_layers(path, change)
    with pytest.raises(MinicnnError, match=expected) as info:
        mc.load(path)
    message = str(info.value)
    assert "\n" not in message and "\x1b" not in message


def test_rewritten_header_still_loads(tmp_path):
    """The crafted-file helper alone (no change) leaves a loadable file: the refusals above come
    from the graph check, not from a broken checksum."""
    path = mc.save(small_graph(), tmp_path / "g.h5")
    rewrite_layers(path, lambda specs: None)
    assert isinstance(mc.load(path), mc.Graph)


def test_names_with_slashes_round_trip(tmp_path):
    # ONNX node names; "a%2Fb" is the escaped spelling of "a/b" and must not meet it
    names = ["/features/features.0/Conv", "/features/features.1/Relu", "a/b", "a%2Fb", "a%252Fb"]
    net = mc.Sequential(
        [
            mc.Conv2D(3, 4, 3, padding=1, name=names[0]),
            mc.ReLU(name=names[1]),
            mc.Conv2D(4, 4, 3, padding=1, name=names[2]),
            mc.Conv2D(4, 4, 3, padding=1, name=names[3]),
            mc.Conv2D(4, 2, 3, padding=1, name=names[4]),
        ],
        seed=2,
    )
    back = mc.load(mc.save(net, tmp_path / "onnx_names.h5"))
    assert [la.name for la in back.layers] == names
    for (la, key, a), (lb, kb, b) in zip(net.parameters(), back.parameters()):
        assert (la.name, key) == (lb.name, kb) and np.array_equal(a, b)
    x = images(2, 6)
    assert np.array_equal(net.forward(x), back.forward(x))
    # a damaged escaped array is still caught by its SHA-256
    with h5py.File(tmp_path / "onnx_names.h5", "r+") as f:
        ds = f["params_escaped/a%2Fb/weight"]
        ds[0, 0, 0, 0] = ds[0, 0, 0, 0] + 1
    with pytest.raises(MinicnnError, match=r"layer 'a/b': weight: SHA-256 mismatch"):
        mc.load(tmp_path / "onnx_names.h5")
