"""minicnn's own HDF5 format: exact round trip, atomic save, every damaged-file case one clear error."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest
from io_helpers import small_net

import minicnn as mc
from minicnn.errors import MinicnnError


def test_round_trip_is_bit_exact(tmp_path):
    net = small_net()
    x = np.random.default_rng(1).uniform(0, 1, (3, 3, 16, 16)).astype(np.float32)
    path = mc.save(net, tmp_path / "m.h5")
    back, fmt = mc.load(path, with_format=True)
    assert fmt == "minicnn"
    assert back.names == net.names and back.dtype == net.dtype
    assert [la.config() for la in back.layers] == [la.config() for la in net.layers]
    for (la, key, a), (lb, kb, b) in zip(net.parameters(), back.parameters(), strict=True):
        assert (la.name, key) == (lb.name, kb) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    assert back.meta["class_names"] == ["a", "b", "c", "d"]
    assert back.meta["provenance"] == {"data": "toy", "seed": 3, "accuracy": 0.5}
    assert back.meta["preprocess"] == "unit" and back.meta["input_shape"] == [3, 16, 16]


def test_round_trip_float64(tmp_path):
    net = small_net(np.float64)
    mc.save(net, tmp_path / "m64.h5")
    back = mc.load(tmp_path / "m64.h5")
    assert back.dtype == np.float64
    x = np.random.default_rng(2).uniform(0, 1, (2, 3, 16, 16))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


def test_file_describes_itself(tmp_path):
    mc.save(small_net(), tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5") as f:
        # format 2 (#16): fixed-length byte-string attributes, so h5py returns bytes
        assert f.attrs["format"] == b"minicnn" and f.attrs["format_version"] == 2
        layers = json.loads(f.attrs["layers"])
        assert layers[3] == {
            "kind": "Conv2D",
            "name": "conv_b",
            "config": {
                "in_channels": 6, "out_channels": 5, "kernel_size": [3, 1], "stride": 2,
                "padding": 0,
            },
        }  # fmt: skip
        assert f["params/conv_a/weight"].shape == (6, 3, 3, 3)


def test_save_is_atomic(tmp_path, monkeypatch):
    """A save that fails half way leaves the previous file intact and no temporary file."""
    target = tmp_path / "m.h5"
    mc.save(small_net(), target)
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(h5py.Group, "create_dataset", boom)
    with pytest.raises(KeyboardInterrupt):
        mc.save(small_net(), target)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.h5"]


def test_save_bad_arguments(tmp_path):
    with pytest.raises(MinicnnError, match="Sequential"):
        mc.save("not a net", tmp_path / "m.h5")
    with pytest.raises(MinicnnError, match="does not exist"):
        mc.save(small_net(), tmp_path / "missing" / "m.h5")
    net = small_net()
    net.meta["bad"] = object()
    with pytest.raises(MinicnnError, match="JSON"):
        mc.save(net, tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


# -- damaged files ----------------------------------------------------------------------------------
def edit(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)
    return path


def replace_weight(f):
    del f["params/conv_b/weight"]
    f["params/conv_b/weight"] = np.zeros((5, 6, 3, 3), np.float32)


def bad_layers(f):
    layers = json.loads(f.attrs["layers"])
    layers[1]["kind"] = "Tanh"
    f.attrs["layers"] = json.dumps(layers)


@pytest.mark.parametrize(
    "damage, expected",
    [
        (replace_weight, r"conv_b.*weight should have shape \(5, 6, 3, 1\), found \(5, 6, 3, 3\)"),
        (lambda f: f["params"].__delitem__("scores"), r"'scores'.*missing"),
        (lambda f: f["params/conv_a"].__delitem__("bias"), r"conv_a.*expected parameters"),
        (bad_layers, r"relu_a.*unknown kind 'Tanh'"),
        (lambda f: f.attrs.__setitem__("format_version", 9), "version 9"),
        (lambda f: f.attrs.__setitem__("meta", "{not json"), "damaged"),
    ],
    ids=["shape", "missing-layer", "missing-bias", "unknown-kind", "version", "bad-json"],
)
def test_damaged_native_files(tmp_path, damage, expected):
    path = edit(mc.save(small_net(), tmp_path / "m.h5"), damage)
    with pytest.raises(MinicnnError, match=expected) as info:
        mc.load(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_truncated_file(tmp_path):
    path = mc.save(small_net(), tmp_path / "m.h5")
    data = path.read_bytes()
    for size in (len(data) // 2, 600, 9):
        cut = tmp_path / f"cut{size}.h5"
        cut.write_bytes(data[:size])
        with pytest.raises(MinicnnError, match=str(cut)):
            mc.load(cut)


@pytest.mark.parametrize("start, stop", [(8, 40), (40, 100), (100, 200)])
def test_corrupt_header(tmp_path, start, stop):
    """Garbage in the superblock or the root group's header: an error, not a traceback or a hang."""
    data = bytearray(mc.save(small_net(), tmp_path / "m.h5").read_bytes())
    data[start:stop] = b"\xab" * (stop - start)
    path = tmp_path / "corrupt.h5"
    path.write_bytes(bytes(data))
    with pytest.raises(MinicnnError, match="truncated or corrupt"):
        mc.load(path)


def test_not_hdf5_missing_and_other_hdf5(tmp_path):
    (tmp_path / "text.h5").write_text("definitely not HDF5\n")
    with pytest.raises(MinicnnError, match="not an HDF5 file"):
        mc.load(tmp_path / "text.h5")
    with pytest.raises(MinicnnError, match="no such file"):
        mc.load(tmp_path / "nothing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["data"] = np.arange(10)
    with pytest.raises(MinicnnError, match="unknown kind"):
        mc.load(tmp_path / "other.h5")


def test_saved_file_has_ordinary_permissions(tmp_path):
    """The temporary file is private while written; the result gets the usual 0666 & ~umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    path = mc.save(small_net(), tmp_path / "m.h5")
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
