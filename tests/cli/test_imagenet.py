"""The ImageNet path end to end: a randomly initialised VGG16 written in the Keras 2 layout of the
downloadable ``vgg16_weights_tf_dim_ordering_tf_kernels.h5``, run through ``minicnn saliency``.

The expected top-1 class is computed independently of the CLI's image and preprocessing code: Pillow
resize + centre crop and the Keras/Caffe preprocessing written out here, then the engine's own
mc.vgg16(seed=0) holding the same weights in memory."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import ok, panels_width, png_size
from PIL import Image

from minicnn import paths

PHOTO = paths.WEIGHTS_DIR / "photos" / "cat.jpg"


def write_keras2_vgg16(net, path) -> None:
    """Write ``net`` (mc.vgg16) as Keras 2 does: HWIO kernels, (in, out) dense, fc1 rows in
    Keras's (H, W, C) flatten order, datasets ``<layer>_W_1:0`` / ``<layer>_b_1:0``."""
    import h5py

    keras_layers = [layer for layer in net.layers if layer.kind != "ReLU"]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([layer.name.encode() for layer in keras_layers], "S")
        f.attrs["keras_version"] = b"2.0.8"
        f.attrs["backend"] = b"tensorflow"
        for layer in keras_layers:
            g = f.create_group(layer.name)
            if not layer.params:
                g.attrs["weight_names"] = np.array([], "S")
                continue
            w = np.asarray(layer.weight)
            if layer.kind == "Conv2D":
                kernel = w.transpose(2, 3, 1, 0)  # OIHW -> HWIO
            elif layer.name == "fc1":  # columns (C, H, W) -> rows (H, W, C)
                kernel = w.reshape(w.shape[0], 512, 7, 7).transpose(0, 2, 3, 1).reshape(w.shape[0], -1).T
            else:
                kernel = w.T
            names = [f"{layer.name}_W_1:0", f"{layer.name}_b_1:0"]
            g.attrs["weight_names"] = np.array([n.encode() for n in names], "S")
            g.create_dataset(names[0], data=kernel)
            g.create_dataset(names[1], data=np.asarray(layer.bias))


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory):
    import minicnn as mc

    net = mc.vgg16(seed=0)
    path = tmp_path_factory.mktemp("keras") / "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    write_keras2_vgg16(net, path)
    return net, path


def caffe_input(photo) -> np.ndarray:
    """(1, 3, 224, 224): shorter side to 224, central crop, RGB -> BGR, minus the ImageNet means."""
    with Image.open(photo) as img:
        img = img.convert("RGB")
        w, h = img.size
        s = 224 / min(w, h)
        img = img.resize((max(224, round(w * s)), max(224, round(h * s))), Image.BILINEAR)
        left, top = (img.size[0] - 224) // 2, (img.size[1] - 224) // 2
        a = np.asarray(img.crop((left, top, left + 224, top + 224)), dtype=np.float64)
    bgr = a[:, :, ::-1] - np.array([103.939, 116.779, 123.68])
    return bgr.transpose(2, 0, 1)[None].astype(np.float32)


def test_saliency_on_a_keras_vgg16_file(vgg16_file, tmp_path):
    net, path = vgg16_file
    r = ok(
        "saliency", "--weights", path, "--image", PHOTO, "--target", "predicted",
        "--out", tmp_path, "--save-arrays",
    )  # fmt: skip
    from minicnn.io.imagenet import class_names

    names = class_names()
    assert len(names) == 1000
    scores = net.forward(caffe_input(PHOTO))[0].astype(np.float64)
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    top5 = np.argsort(-probs)[:5]
    expected = ", ".join(f"{names[i]} {probs[i]:.3f}" for i in top5)
    assert f"cat: top-5 {expected}" in r.stdout
    (picture,) = tmp_path.glob("cat_saliency_class*.png")  # the predicted class is in the name
    assert picture.stem == f"cat_saliency_class{top5[0]}"
    h, w = png_size(picture)
    assert w == panels_width(3, 224) and h > 224
    sal = np.load(picture.with_suffix(".npz"))["saliency"]
    assert sal.shape == (224, 224) and sal.max() > 0


def test_target_by_imagenet_class_name(vgg16_file, tmp_path):
    """--target tabby picks class 281 and the map equals the engine's saliency of that class on the
    independently preprocessed photo."""
    from support import assert_close

    import minicnn as mc

    net, path = vgg16_file
    ok(
        "saliency",
        "--weights",
        path,
        "--image",
        PHOTO,
        "--target",
        "tabby",
        "--out",
        tmp_path,
        "--save-arrays",
    )
    expected = mc.saliency(net, caffe_input(PHOTO), 281)[0]
    saved = np.load(tmp_path / "cat_saliency_class281.npz")
    assert_close(saved["saliency"], expected, what="saliency of 'tabby'")
    assert json.loads(str(saved["meta"]))["target_name"] == "tabby"  # the shipped ImageNet list
