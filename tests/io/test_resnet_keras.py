"""keras.applications.ResNet50 files (full model ``model.save("x.h5")``, its weights-only legacy
layout, Keras 3 ``.weights.h5``), ResNet101, ResNet152 and the pre-activation ResNet50V2 load as a
Graph that scores as Keras does, with Keras' "caffe" preprocessing for v1; the weights are seeded
random, every BatchNormalization with random gamma, beta and moving statistics (not the identity),
so a fold that drops or misplaces one changes the scores."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError


def randomised(model, seed=0):
    """``model`` with seeded He-normal kernels, small biases and random BatchNorm statistics."""
    rng = np.random.default_rng(seed)
    values = []
    for v in model.weights:
        path, shape = v.path, tuple(v.shape)
        if path.endswith("gamma"):
            a = rng.uniform(0.5, 1.5, shape)
        elif path.endswith("beta"):
            a = rng.uniform(-0.3, 0.3, shape)
        elif path.endswith("moving_mean"):
            a = rng.normal(0, 0.5, shape)
        elif path.endswith("moving_variance"):
            a = rng.uniform(0.3, 3.0, shape)
        elif len(shape) > 1:
            a = rng.normal(0, (2.0 / np.prod(shape[:-1])) ** 0.5, shape)
        else:
            a = rng.uniform(-0.1, 0.1, shape)
        values.append(a.astype(np.float32))
    model.set_weights(values)
    return model


def keras_scores(keras, model, images):
    """Keras's own output for RGB images (N, H, W, 3) in 0..255, after its own resnet50
    preprocess_input, as (N, C) or (N, C, H, W)."""
    x = keras.applications.resnet50.preprocess_input(images.astype(np.float32).copy())
    out = np.asarray(keras.ops.convert_to_numpy(model(x, training=False)), np.float64)
    return out if out.ndim == 2 else out.transpose(0, 3, 1, 2)


@pytest.fixture(scope="module")
def resnet50(tmp_path_factory):
    """ResNet-50 with its top at 224 (no softmax, so the outputs are the scores): the three files
    and Keras's scores for two images."""
    keras = oracle("keras")
    folder = tmp_path_factory.mktemp("keras_resnet")
    model = randomised(keras.applications.ResNet50(weights=None, classifier_activation=None))
    images = np.random.default_rng(1).uniform(0, 255, (2, 224, 224, 3))
    files = {"model": folder / "r50.h5", "weights": folder / "r50.weights.h5", "legacy": folder / "w.h5"}
    model.save(files["model"])
    model.save_weights(files["weights"])
    model.save(files["legacy"])
    with h5py.File(files["legacy"], "a") as f:  # without model_config: the legacy weights layout
        del f.attrs["model_config"]
    return files, images, keras_scores(keras, model, images)


@pytest.mark.parametrize(
    "kind, fmt",
    [("model", "keras-model"), ("weights", "keras3-weights"), ("legacy", "keras3-legacy-weights")],
)
def test_resnet50_scores_equal_keras(resnet50, kind, fmt):
    files, images, expected = resnet50
    net, found = mc.load(files[kind], with_format=True)
    assert found == fmt and not net.is_chain
    assert net.meta["architecture"] == "resnet50" and net.meta["preprocess"] == "caffe"
    assert net.meta["input_shape"] == [3, 224, 224]
    names = net.meta["class_names"]
    assert len(names) == 1000 and names[0] == "tench"
    adds = [name for name in net.names if name.endswith("_add")]
    assert len(adds) == 16 and all(len(net.inputs[a]) == 2 for a in adds)  # 3 + 4 + 6 + 3 blocks
    assert "conv1_bn" not in net.names  # folded into conv1_conv
    x = mc.preprocess(images, "caffe")
    assert_close(net.forward(x), expected, rtol=1e-4, what=f"ResNet-50 {kind}")


@pytest.fixture(scope="module")
def notop(tmp_path_factory):
    """ResNet-50 without top at 64 x 64 (softmax-free feature maps), as a full-model file."""
    keras = oracle("keras")
    model = randomised(
        keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3)), 2
    )
    path = tmp_path_factory.mktemp("keras_notop") / "notop.h5"
    model.save(path)
    images = np.random.default_rng(3).uniform(0, 255, (2, 64, 64, 3))
    return path, images, keras_scores(keras, model, images)


def test_resnet50_notop_features_equal_keras(notop):
    path, images, expected = notop
    net = mc.load(path)
    assert net.names[-1] == "conv5_block3_out" and "class_names" not in net.meta
    assert net.meta["input_shape"] == [3, 64, 64]
    assert_close(net.forward(mc.preprocess(images, "caffe")), expected, rtol=1e-4, what="ResNet-50 notop")


def _edit_config(path, tmp_path, edit):
    target = tmp_path / "edited.h5"
    target.write_bytes(path.read_bytes())
    with h5py.File(target, "a") as f:
        config = json.loads(f.attrs["model_config"])
        edit({spec["config"]["name"]: spec for spec in config["config"]["layers"]})
        f.attrs["model_config"] = json.dumps(config)
    return target


def _stride_shortcut(specs):
    specs["conv2_block1_0_conv"]["config"]["strides"] = [2, 2]


def _dangling(specs):
    specs["conv2_block2_add"]["inbound_nodes"][0]["args"][0][0]["config"]["keras_history"][0] = "ghost"


@pytest.mark.parametrize(
    "edit, message",
    [
        (_stride_shortcut, r"Keras layer 'conv2_block1_add': inputs of shapes .* do not add"),
        (_dangling, r"Keras layer 'conv2_block2_add' reads \['ghost'\], not a layer listed before it"),
    ],
    ids=["shapes", "dangling"],
)
def test_broken_resnet_configs_are_one_line(notop, tmp_path, edit, message):
    path = _edit_config(notop[0], tmp_path, edit)
    with pytest.raises(MinicnnError, match=message) as err:
        mc.load(path)
    assert "\n" not in str(err.value)


def test_resnet50_saliency_equals_keras_autograd(tmp_path):
    """dS_c/dx through the loaded graph (16 residual sums, the zero-padded stem pool) against the
    gradient of Keras's own model (torch backend autograd) at 64 x 64 with a 10-class top, both
    with respect to the caffe-preprocessed input; float32 on both sides, 1e-4 of the largest."""
    keras = oracle("keras")
    torch = oracle("torch")
    model = keras.applications.ResNet50(
        weights=None, input_shape=(64, 64, 3), classes=10, classifier_activation=None
    )
    model = randomised(model, seed=5)
    path = tmp_path / "r50_64.h5"
    model.save(path)
    net = mc.load(path)
    assert net.meta["input_shape"] == [3, 64, 64] and "class_names" not in net.meta
    images = np.random.default_rng(6).uniform(0, 255, (1, 64, 64, 3))
    keras_input = keras.applications.resnet50.preprocess_input(images.astype(np.float32).copy())
    tx = torch.tensor(np.ascontiguousarray(keras_input), requires_grad=True)
    model(tx, training=False)[0, 3].backward()
    ours = mc.saliency(net, mc.preprocess(images, "caffe"), target=[3], signed=True)
    assert_close(ours, tx.grad.numpy().transpose(0, 3, 1, 2), rtol=1e-4, what="ResNet-50 saliency")


# -- ResNet101 / ResNet152 and the pre-activation ResNet50V2 -------------------------------------
DEEP = {"ResNet101": ("resnet101", 33), "ResNet152": ("resnet152", 50), "ResNet50V2": ("resnet50v2", 16)}


@pytest.fixture(scope="module", params=sorted(DEEP))
def deep(request, tmp_path_factory):
    """keras.applications ``ResNet101`` / ``ResNet152`` / ``ResNet50V2`` at 64 x 64 with a 10-class
    top and random weights and BatchNorm statistics, saved by Keras as a full model and as Keras 3
    weights; Keras's own scores for two images after its own preprocess_input (``caffe`` for v1,
    ``tf``, x / 127.5 - 1, for v2), that preprocessed input in NCHW, and the gradient of class 3's
    score with respect to it (NCHW)."""
    keras = oracle("keras")
    name = request.param
    model = getattr(keras.applications, name)(
        weights=None, input_shape=(64, 64, 3), classes=10, classifier_activation=None
    )
    model = randomised(model, seed=7)
    folder = tmp_path_factory.mktemp(name)
    files = {"model": folder / f"{name}.h5", "weights": folder / f"{name}.weights.h5"}
    model.save(files["model"])
    model.save_weights(files["weights"])
    images = np.random.default_rng(8).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    family = keras.applications.resnet_v2 if name.endswith("V2") else keras.applications.resnet
    x = family.preprocess_input(images.copy())
    scores = np.asarray(keras.ops.convert_to_numpy(model(x, training=False)), np.float64)
    torch = oracle("torch")
    tx = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    model(tx, training=False)[:, 3].sum().backward()  # Keras's own gradient (torch backend autograd)
    grad = tx.grad.numpy().transpose(0, 3, 1, 2)
    return name, files, images, np.ascontiguousarray(x.transpose(0, 3, 1, 2)), (scores, grad)


@pytest.mark.parametrize("kind, fmt", [("model", "keras-model"), ("weights", "keras3-weights")])
def test_deep_and_preactivation_resnets_score_as_keras(deep, kind, fmt):
    """Scores within 1e-4 of the largest, from the full model and from the weights alone (the
    layout rebuilt from the layer names: depth from the blocks per stage, v2 from ``_preact_bn``).
    v1 folds every BatchNormalization and gets "caffe" preprocessing (minicnn's own preprocess
    gives Keras's input); v2 keeps the pre-activation BatchNorms (each reads a sum or the stem's
    pool, which the shortcut reads too) and the stem pool's zero padding (it reads the signed
    convolution output) as a 1x1 identity convolution."""
    name, files, images, x, (expected, _) = deep
    arch, sums = DEEP[name]
    net, found = mc.load(files[kind], with_format=True)
    assert found == fmt and not net.is_chain and net.meta["architecture"] == arch
    adds = [layer.name for layer in net.layers if layer.several_inputs]
    assert len(adds) == sums
    kept = [layer.name for layer in net.layers if "running_var" in layer.params]
    if name.endswith("V2"):
        assert len(kept) == sums + 1 and kept[-1] == "post_bn"  # a preact_bn per block, post_bn
        assert all(k.endswith("_preact_bn") for k in kept[:-1])
        assert net.inputs["pool1_pool"] == ("pool1_pad",) and "preprocess" not in net.meta
        # the stem pools the signed first convolution after ZeroPadding2D: a border window whose
        # numbers are all negative gives 0 in Keras (the zeros win), never its largest negative
        # number (what -inf padding gives); the graph keeps the zeros, as NumPy's pad-then-pool
        rec = net.run(x)
        conv = np.pad(rec.output("conv1_conv"), ((0, 0), (0, 0), (1, 1), (1, 1)))
        h, w = conv.shape[2:]
        pool = [conv[:, :, i : i + h - 2 : 2, j : j + w - 2 : 2] for i in range(3) for j in range(3)]
        assert_close(rec.output("pool1_pool"), np.max(pool, axis=0), 1e-6, "zero-padded max pool")
        assert (np.max(pool, axis=0) == 0).any()  # windows where -inf padding would differ
    else:
        assert kept == [] and net.meta["preprocess"] == "caffe"
        assert_close(mc.preprocess(images, "caffe"), x, 1e-6, "caffe preprocessing as Keras's")
    assert_close(net.forward(x), expected, rtol=1e-4, what=f"{name} {kind}")


def test_preactivation_batchnorm_without_weights_is_one_line(deep, tmp_path):
    """A kept BatchNorm (ResNetV2's post_bn) whose weights are missing from the file is refused in
    one line naming it; a v1 file without a folded one likewise."""
    name, files, *_ = deep
    missing = "post_bn" if name.endswith("V2") else "conv5_block3_3_bn"
    target = tmp_path / "missing.h5"
    target.write_bytes(files["model"].read_bytes())
    with h5py.File(target, "a") as f:  # the layer's group and its entry in layer_names removed
        group = f["model_weights"]
        del group[missing]
        names = [n if isinstance(n, str) else n.decode() for n in group.attrs["layer_names"]]
        group.attrs["layer_names"] = np.array([n.encode() for n in names if n != missing])
    with pytest.raises(MinicnnError, match=f"weights of layer '{missing}' are missing") as err:
        mc.load(target)
    assert "\n" not in str(err.value)


def test_preactivation_saliency_equals_keras_autograd(deep):
    """ResNet50V2's dS_3/dx through the loaded graph (the kept BatchNorm layers' own backward, the
    identity convolution that pads the stem pool) against Keras's own gradient by torch-backend
    autograd; float32 on both sides, 1e-4 of the largest (measured 1.6e-6).

    Only v2 here: the 101- and 152-layer v1 gradients with random weights put ReLU inputs within
    float32 rounding of 0, so float32 maps move by percents (measured: minicnn's float32 map 2.6%
    from its float64 one on ResNet101, Keras's 1.1% from minicnn's float64 one on ResNet152);
    ResNet50's gradient is checked at 1e-4 above. For v1, minicnn's float64 map (exact for the
    weights as loaded) is held to Keras's float32 map at 5e-2 of the largest: wide enough for those
    rounding flips, far below the O(1) error of a wrong rule, fold or layout."""
    name, files, _, x, (_, grad) = deep
    net = mc.load(files["model"])
    if name.endswith("V2"):
        ours = mc.saliency(net, x, target=3, signed=True, progress=False)
        assert_close(ours, grad, rtol=1e-4, what=f"{name} saliency")
    else:
        x64 = x.astype(np.float64)
        ours = mc.saliency(net.astype(np.float64), x64, target=3, signed=True, progress=False)
        assert_close(ours, grad, rtol=5e-2, what=f"{name} saliency (float64 against Keras's float32)")
