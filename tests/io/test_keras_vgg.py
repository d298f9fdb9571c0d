"""Keras VGG16 files in every layout against Keras 3's own predictions (issue 3, verification).

Scores must agree within 1e-4 of the largest magnitude. The models are VGG16 (Simonyan & Zisserman
2014, configuration D) with seeded He-normal weights; see conftest.py.
"""

from __future__ import annotations

import h5py
import numpy as np
from support import assert_close

import minicnn as mc


def check(case, fmt, architecture, notop=False):
    net, found = mc.load(case.path, with_format=True)
    assert found == fmt
    assert net.meta["architecture"] == architecture
    assert net.meta["preprocess"] == "caffe"
    assert net.meta["input_shape"] == [3, 224, 224]
    if not notop:
        names = net.meta["class_names"]
        assert len(names) == 1000 and names[0] == "tench" and names[999] == "toilet tissue"
    assert_close(net.forward(case.x), case.expected, what=f"{fmt} {case.path.name}")
    return net


def test_keras3_model_file_then_legacy_weights_under_model_weights(vgg16_model_h5):
    """model.save("x.h5") is a full-model file; without model_config it is the weight-only legacy
    layout under ``model_weights`` (``block1_conv1/.../kernel`` datasets, str attributes)."""
    net = check(vgg16_model_h5, "keras-model", "vgg16")
    assert net.meta["final_activation"] is None  # classifier_activation=None
    assert "fc1_relu" in net.names and net.index("fc1_relu") == net.index("fc1") + 1
    with h5py.File(vgg16_model_h5.path, "a") as f:
        del f.attrs["model_config"]
    check(vgg16_model_h5, "keras3-legacy-weights", "vgg16")


def test_keras3_weights_h5(vgg16_weights_h5):
    with h5py.File(vgg16_weights_h5.path) as f:  # the layout the loader must order numerically
        assert "conv2d_10" in f["layers"] and "conv2d_2" in f["layers"]
    check(vgg16_weights_h5, "keras3-weights", "vgg16")


def test_keras2_layout_split_layer_names(vgg16_keras2, vgg16_keras):
    with h5py.File(vgg16_keras2.path) as f:
        assert "layer_names" not in f.attrs and "layer_names1" in f.attrs
        assert "block1_conv1_W_1:0" in f["block1_conv1"]
    net = check(vgg16_keras2, "keras2-weights", "vgg16")
    # fc1's engine column c*49 + h*7 + w is Keras's kernel row h*7*512 + w*512 + c
    kernel = np.asarray(vgg16_keras[0].get_layer("fc1").kernel)
    c, h, w = 5, 3, 6
    np.testing.assert_array_equal(net["fc1"].weight[:, c * 49 + h * 7 + w], kernel[h * 3584 + w * 512 + c])


def test_notop_features_at_64(vgg16_notop):
    net = check(vgg16_notop, "keras3-legacy-weights", "vgg16_notop", notop=True)
    assert net.names[-1] == "block5_pool"
    assert "class_names" not in net.meta


def test_vgg19_notop_weights_h5(vgg19_notop_weights_h5):
    net = check(vgg19_notop_weights_h5, "keras3-weights", "vgg19_notop", notop=True)
    assert net.names[-2:] == ["block5_conv4_relu", "block5_pool"]
