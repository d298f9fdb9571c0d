"""Keras weight files that are not what they claim: one MinicnnError naming file, layer, expectation.

The files are written with h5py in the Keras 2 layout; datasets without data (HDF5 fill values) keep
them small, since only shapes and names matter here.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import minicnn as mc
from minicnn.errors import MinicnnError

WIDTHS = (64, 128, 256, 512, 512)


def vgg_specs(blocks=(2, 2, 3, 3, 3), top=None):
    """[(layer name, [kernel shape, bias shape])] of a Keras VGG; top = number of classes or None."""
    specs, channels = [("input_1", [])], 3
    for b, (convs, width) in enumerate(zip(blocks, WIDTHS, strict=True), start=1):
        for i in range(1, convs + 1):
            specs.append((f"block{b}_conv{i}", [(3, 3, channels, width), (width,)]))
            channels = width
        specs.append((f"block{b}_pool", []))
    if top:
        specs += [("flatten", []), ("fc1", [(25088, 4096), (4096,)]), ("fc2", [(4096, 4096), (4096,)])]
        specs.append(("predictions", [(4096, top), (top,)]))
    return specs


def write_keras2(path, specs, names_attr=None):
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array(names_attr or [n for n, _ in specs], dtype="S")
        for name, shapes in specs:
            g = f.create_group(name)
            wnames = [f"{name}_{'Wb'[i]}_1:0" for i in range(len(shapes))]
            g.attrs["weight_names"] = np.array(wnames, dtype="S")
            for n, shape in zip(wnames, shapes, strict=True):
                g.create_dataset(n, shape, np.float32, fillvalue=0.5)
    return path


def test_vgg19_top_with_10_classes(tmp_path):
    path = write_keras2(tmp_path / "v19.h5", vgg_specs((2, 2, 4, 4, 4), top=10))
    net, fmt = mc.load(path, with_format=True)
    assert fmt == "keras2-weights" and net.meta["architecture"] == "vgg19"
    assert "block5_conv4" in net.names and net.shapes()[-1] == (10,)
    assert "class_names" not in net.meta  # not ImageNet's 1000 classes
    assert float(net["fc1"].weight[0, 0]) == 0.5


def test_vgg19_notop(tmp_path):
    net = mc.load(write_keras2(tmp_path / "v19n.h5", vgg_specs((2, 2, 4, 4, 4))))
    assert net.meta["architecture"] == "vgg19_notop" and net.names[-1] == "block5_pool"


def expect_error(path, *fragments):
    with pytest.raises(MinicnnError) as info:
        mc.load(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_wrong_number_of_convolutions(tmp_path):
    specs = [s for s in vgg_specs() if s[0] != "block3_conv3"]
    specs = [(n, s if n != "block4_conv1" else [(3, 3, 256, 512), (512,)]) for n, s in specs]
    expect_error(write_keras2(tmp_path / "x.h5", specs), "expected 13 or 16 convolution", "found 12")


def test_wrong_kernel_shape(tmp_path):
    specs = [(n, [(3, 3, 128, 200), (256,)] if n == "block3_conv1" else s) for n, s in vgg_specs()]
    expect_error(
        write_keras2(tmp_path / "x.h5", specs), "block3_conv1", "(256, 128, 3, 3)", "(200, 128, 3, 3)"
    )


def test_wrong_class_count_shape(tmp_path):
    specs = [(n, [(4096, 7), (8,)] if n == "predictions" else s) for n, s in vgg_specs(top=7)]
    expect_error(write_keras2(tmp_path / "x.h5", specs), "predictions", "bias", "(7,)", "(8,)")


def test_listed_layer_without_group(tmp_path):
    specs = vgg_specs()
    names = [n for n, _ in specs] + ["block6_conv1"]
    expect_error(write_keras2(tmp_path / "x.h5", specs, names), "block6_conv1", "no group")


def test_missing_weight_dataset(tmp_path):
    path = write_keras2(tmp_path / "x.h5", vgg_specs())
    with h5py.File(path, "a") as f:
        del f["block2_conv1/block2_conv1_b_1:0"]
    expect_error(path, "block2_conv1", "block2_conv1_b_1:0", "missing")


def test_keras3_weights_file_of_another_model(tmp_path):
    with h5py.File(tmp_path / "x.weights.h5", "w") as f:
        f["layers/dense/vars/0"] = np.zeros((4, 2), np.float32)
        f["layers/dense/vars/1"] = np.zeros(2, np.float32)
    expect_error(tmp_path / "x.weights.h5", "VGG16/VGG19", "found 0 convolution and 1 dense")
