"""Session fixtures: Keras 3 models with seeded non-trivial weights, written in every file layout.

Keras's default initialisation (Glorot kernels, zero biases) gives near-zero class scores through
16 layers, and a comparison of near-zero numbers proves nothing; so every kernel is He-normal
(std sqrt(2 / fan_in)) and every bias small and random, from a seeded NumPy generator. The full VGG16
(138M parameters, ~550 MB per file) is built once per session and its files live in a temporary
folder; they are never committed.

Each model-file fixture returns a Case (io_helpers.py): the file path, the input batch already
preprocessed for minicnn (N, C, H, W) float32, and Keras's ``model.predict`` output on the same
images.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from io_helpers import Case, predict, random_images, seed_weights
from support import oracle

import minicnn as mc


@pytest.fixture(scope="session")
def keras():
    return oracle("keras")


@pytest.fixture(scope="session")
def vgg16_keras(keras):
    """(model, images, caffe-preprocessed NHWC input, Keras scores) for a seeded full VGG16."""
    from keras.applications import vgg16

    model = vgg16.VGG16(weights=None, include_top=True, classifier_activation=None)
    seed_weights(model, 16)
    images = random_images(1, 224, seed=1)  # one image: a 224x224 VGG16 pass costs seconds
    expected = predict(model, vgg16.preprocess_input(images.copy()))
    return model, images, expected


@pytest.fixture(scope="session")
def io_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("io_models")


@pytest.fixture(scope="session")
def vgg16_model_h5(vgg16_keras, io_dir):
    """Case: full VGG16 through ``model.save("x.h5")`` (model_config + model_weights)."""
    model, images, expected = vgg16_keras
    path = io_dir / "vgg16_model.h5"
    model.save(path)
    return Case(path, mc.preprocess(images, "caffe"), expected)


@pytest.fixture(scope="session")
def vgg16_weights_h5(vgg16_keras, io_dir):
    """Case: full VGG16 in Keras 3's ``.weights.h5`` layout (layers/conv2d_N/vars/i)."""
    model, images, expected = vgg16_keras
    path = io_dir / "vgg16.weights.h5"
    model.save_weights(path)
    return Case(path, mc.preprocess(images, "caffe"), expected)


def keras2_name(layer_name: str, index: int) -> str:
    """Keras 2 dataset names of the downloadable files: block1_conv1_W_1:0, block1_conv1_b_1:0."""
    return f"{layer_name}_{'Wb'[index]}_1:0"


@pytest.fixture(scope="session")
def vgg16_keras2(vgg16_keras, io_dir):
    """Case: full VGG16 in the Keras 2 layout, written with h5py as the downloadable file is:
    ``layer_names`` split into ``layer_names0``/``layer_names1`` and stored as bytes,
    ``weight_names`` as bytes, datasets directly in each layer group."""
    model, images, expected = vgg16_keras
    path = io_dir / "vgg16_keras2.h5"
    names = [layer.name.encode() for layer in model.layers]
    with h5py.File(path, "w") as f:
        half = len(names) // 2
        f.attrs["layer_names0"] = np.array(names[:half], dtype="S")
        f.attrs["layer_names1"] = np.array(names[half:], dtype="S")
        f.attrs["keras_version"] = b"2.0.8"
        f.attrs["backend"] = b"tensorflow"
        for layer in model.layers:
            g = f.create_group(layer.name)
            weights = [np.asarray(w) for w in layer.get_weights()]
            wnames = [keras2_name(layer.name, i) for i in range(len(weights))]
            g.attrs["weight_names"] = np.array([n.encode() for n in wnames], dtype="S")
            for n, w in zip(wnames, weights, strict=True):
                g.create_dataset(n, data=w)
    return Case(path, mc.preprocess(images, "caffe"), expected)


@pytest.fixture(scope="session")
def vgg16_notop(keras, vgg16_keras, io_dir):
    """Case: VGG16 notop (block5_pool features) at 64x64, legacy .h5 weights written by Keras 3
    at the file's root (``block1_conv1/.../kernel``), with Keras's own legacy weight writer."""
    from keras.applications import vgg16
    from keras.src.legacy.saving import legacy_h5_format

    top, _, _ = vgg16_keras
    model = vgg16.VGG16(weights=None, include_top=False, input_shape=(64, 64, 3))
    model.set_weights(top.get_weights()[:26])
    images = random_images(2, 64, seed=2)
    expected = predict(model, vgg16.preprocess_input(images.copy()))
    path = io_dir / "vgg16_notop.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return Case(path, mc.preprocess(images, "caffe"), expected.transpose(0, 3, 1, 2))


@pytest.fixture(scope="session")
def vgg19_notop_weights_h5(keras, io_dir):
    """Case: VGG19 notop at 48x48 in Keras 3's ``.weights.h5`` layout (conv2d ... conv2d_15)."""
    from keras.applications import vgg19

    model = vgg19.VGG19(weights=None, include_top=False, input_shape=(48, 48, 3))
    seed_weights(model, 19)
    images = random_images(2, 48, seed=3)
    expected = predict(model, vgg19.preprocess_input(images.copy()))
    path = io_dir / "vgg19_notop.weights.h5"
    model.save_weights(path)
    return Case(path, mc.preprocess(images, "caffe"), expected.transpose(0, 3, 1, 2))
