"""PyTorch and safetensors VGG files, written by torch itself, loaded without torch: scores equal torch's.

Models are torchvision's / timm's module layouts in plain torch.nn (tests/torch_models.py): a small
VGG-style net with BatchNorm and a real (3x3, from 6x6 to 2x2) adaptive average pool at 48 x 48,
VGG16-BN's structure at 1/16 the width (1000 classes, 224 x 224), timm's VGG16 layout, and one
full-size VGG16 (528 MB) in the zip format.
"""

from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np
import pytest
import torch_models as tm
from support import assert_close, oracle

import minicnn as mc
from minicnn.errors import MinicnnError

FORMATS = ("zip", "legacy", "safetensors")
MODELS = {  # name -> (builder, input size)
    "small_bn": (lambda: tm.torchvision_vgg(bn=True), 48),
    "small": (lambda: tm.torchvision_vgg(bn=False, side=4), 40),
    "vgg16_bn_narrow": (
        lambda: tm.torchvision_vgg(tm.VGG16_NARROW, bn=True, hidden=64, classes=1000, side=7),
        224,
    ),
    "timm_vgg16_narrow": (lambda: tm.timm_vgg(), 224),
}


@pytest.fixture(scope="module")
def models():
    oracle("torch")
    return {name: (build(), size) for name, (build, size) in MODELS.items()}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(MODELS))
def test_scores_equal_torch(models, tmp_path, name, fmt):
    model, size = models[name]
    path = tm.save(model, tmp_path / f"{name}.{fmt}", fmt)
    net, found = mc.load(path, with_format=True)
    assert found == {"zip": "torch-zip", "legacy": "torch-legacy"}.get(fmt, fmt)
    x = mc.preprocess(tm.images(2, size), net.meta["preprocess"])
    assert_close(net.forward(x), tm.scores(model, x), rtol=1e-4, what=f"{name} {fmt}")
    assert net.meta["preprocess"] == "torch"


def test_meta_names_the_architecture_and_classes(models, tmp_path):
    net = mc.load(tm.save(models["vgg16_bn_narrow"][0], tmp_path / "a.pth", "zip"))
    assert net.meta["architecture"] == "vgg16_bn-narrow"
    assert net.meta["batchnorm_folded"] is True
    assert len(net.meta["class_names"]) == 1000 and net.meta["class_names"][0] == "tench"
    # torch's module paths are the layer names: conv 0, (BatchNorm 1, folded), ReLU 2, conv 3, ...
    assert net.names[:4] == ["features.0", "features.2", "features.3", "features.5"]
    assert "avgpool" in net.names and net.names[-1] == "classifier.6"
    timm = mc.load(tm.save(models["timm_vgg16_narrow"][0], tmp_path / "t.safetensors", "safetensors"))
    assert timm.meta["layout"] == "timm" and timm.names[-1] == "head.fc"


def test_batchnorm_statistics_matter(models, tmp_path):
    """The fold really uses the running statistics: the same file with them reset to (0, 1) scores
    differently from torch (so the agreement above is not an accident of identity BatchNorms)."""
    torch = oracle("torch")
    model, size = models["small_bn"]
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    for k in sd:
        if k.endswith("running_mean"):
            sd[k].zero_()
        elif k.endswith("running_var"):
            sd[k].fill_(1.0)
    torch.save(sd, tmp_path / "reset.pth")
    x = mc.preprocess(tm.images(2, size), "torch")
    diff = mc.load(tmp_path / "reset.pth").forward(x) - tm.scores(model, x)
    assert np.abs(diff).max() > 0.05 * np.abs(tm.scores(model, x)).max()


def test_adaptive_pool_at_other_sizes(models, tmp_path):
    """torchvision's adaptive pool follows the input: the same file scores 48, 56 and 72 pixel images."""
    model, _ = models["small_bn"]
    net = mc.load(tm.save(model, tmp_path / "a.pth", "zip"))
    for size in (56, 72):  # 7x7 -> 2x2 (overlapping 4x4 windows) and 9x9 -> 2x2
        x = mc.preprocess(tm.images(1, size), "torch")
        assert_close(net.forward(x), tm.scores(model, x), rtol=1e-4, what=f"size {size}")


@pytest.fixture(scope="module")
def full_size():
    """VGG16 and VGG16-BN at their real size (138M parameters; BatchNorm with random running
    statistics), built once, with torch's scores for one 224 x 224 image."""
    x = mc.preprocess(tm.images(1, 224), "torch")
    made = {}
    for name, bn in (("vgg16", False), ("vgg16_bn", True)):
        model = tm.torchvision_vgg(tm.VGG16, bn=bn, hidden=4096, classes=1000, side=7)
        made[name] = (model, tm.scores(model, x))
    return x, made


@pytest.mark.parametrize("fmt", ["zip", "legacy", "safetensors", "onnx"])
@pytest.mark.parametrize("name", ["vgg16", "vgg16_bn"])
def test_full_size_files(full_size, tmp_path, name, fmt):
    """The real size in every format: each file loads to torch's scores (1e-4 of the largest)."""
    x, made = full_size
    model, expected = made[name]
    if fmt == "onnx":
        path = tm.save_onnx(model, tmp_path / f"{name}.onnx", 224)
    else:
        path = tm.save(model, tmp_path / f"{name}.{fmt}", fmt)
    net = mc.load(path)
    assert net.num_params() == 138_357_544  # BatchNorm folded into the convolutions (ONNX: by torch)
    if fmt != "onnx":
        assert net.meta["architecture"] == name and net.meta["batchnorm_folded"] is (name == "vgg16_bn")
    assert_close(net.forward(x), expected, rtol=1e-4, what=f"{name} {fmt}")


# -- the restricted unpickler -------------------------------------------------------------------
class _Payload:
    """Pickles to a call of os.system: pickle.load (or torch.load(weights_only=False)) runs it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _legacy_file_with(path, obj):
    """A legacy-format torch file whose object pickle is ``obj``: the real header, then obj."""
    with open(path, "wb") as f:
        for head in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(head, f, protocol=2)
        pickle.dump(obj, f, protocol=2)
        pickle.dump([], f, protocol=2)
    return path


def _zip_file_with(path, obj, template):
    """A zip-format torch file (copied from ``template``) with data.pkl replaced by ``obj``."""
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = pickle.dumps(obj, protocol=2) if info.filename.endswith("/data.pkl") else src.read(info)
            dst.writestr(info, data)
    return path


@pytest.mark.parametrize("container", ["legacy", "zip"])
def test_malicious_pickle_is_refused_and_does_not_run(models, tmp_path, container):
    marker = tmp_path / "pwned"
    payload = {"features.0.weight": _Payload(marker)}
    if container == "legacy":
        path = _legacy_file_with(tmp_path / "evil.pth", payload)
    else:
        template = tm.save(models["small"][0], tmp_path / "ok.pth", "zip")
        path = _zip_file_with(tmp_path / "evil.pth", payload, template)
    with pytest.raises(MinicnnError, match=r"refused: the pickle asks for (posix|os|nt)\.system") as err:
        mc.load(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert not marker.exists()
    # the payload is live: a plain pickle.load of the same bytes does run it (so the test can fail)
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump(_Payload(marker), f)
    with open(tmp_path / "plain.pkl", "rb") as f:
        pickle.load(f)
    assert marker.exists()


def test_pickled_module_is_refused(tmp_path):
    torch = oracle("torch")
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), tmp_path / "whole.pth")
    with pytest.raises(MinicnnError, match="refused: the pickle asks for .*save model.state_dict"):
        mc.load(tmp_path / "whole.pth")


@pytest.mark.parametrize("fmt", ["zip", "legacy", "safetensors"])
def test_truncated_file_is_one_line(models, tmp_path, fmt):
    path = tm.save(models["small_bn"][0], tmp_path / f"a.{fmt}", fmt)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 100):
        path.write_bytes(data[:cut])
        with pytest.raises(MinicnnError) as err:
            mc.load(path)
        assert "\n" not in str(err.value), err.value


def test_declared_storage_larger_than_the_file(tmp_path):
    """A legacy header that declares a storage of 10^12 floats is refused before any allocation."""
    torch = oracle("torch")
    torch.save(
        {"features.0.weight": torch.zeros(4, 3, 3, 3)},
        tmp_path / "a.pth",
        _use_new_zipfile_serialization=False,
    )
    data = bytearray((tmp_path / "a.pth").read_bytes())
    count = (108).to_bytes(8, "little")
    i = data.rindex(count)  # the int64 element count before the storage's bytes
    data[i : i + 8] = (10**12).to_bytes(8, "little")
    (tmp_path / "a.pth").write_bytes(bytes(data))
    with pytest.raises(MinicnnError, match="holds 1000000000000 elements|truncated"):
        mc.load(tmp_path / "a.pth")


def test_bad_state_dicts_name_the_key(models, tmp_path):
    torch = oracle("torch")
    good = models["small"][0].state_dict()

    def fails(sd, pattern):
        torch.save(sd, tmp_path / "bad.pth")
        with pytest.raises(MinicnnError, match=pattern) as err:
            mc.load(tmp_path / "bad.pth")
        assert "\n" not in str(err.value)

    fails({**good, "extra.weight": torch.zeros(3)}, "unexpected key 'extra.weight'")
    fails(
        {**good, "classifier.3.weight": torch.zeros(32, 31)},
        r"classifier.3.weight should have shape \(32, 32\)",
    )
    fails({k: v for k, v in good.items() if k != "features.0.bias"}, "missing features.0.bias")
    fails(
        {"fc.weight": torch.zeros(10, 512), "layer1.0.conv1.weight": torch.zeros(64, 64, 3, 3)},
        "architecture",
    )
    fails({**good, "classifier.0.weight": torch.zeros(32, 65)}, "classifier.0.weight reads 65 inputs")


def test_not_a_state_dict(tmp_path):
    torch = oracle("torch")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(MinicnnError, match="expected a state dict"):
        mc.load(tmp_path / "list.pth")


@pytest.mark.parametrize("fmt", ["zip", "legacy", "safetensors", "onnx"])
def test_damaged_files_fail_with_one_line(models, tmp_path, fmt):
    """Random bytes changed in the headers (the first 3 KB: pickle, zip entries, JSON, protobuf) and
    anywhere: every load either succeeds (the change hit weight bytes, which carry no checksum) or
    raises one MinicnnError line; nothing else escapes."""
    model, size = models["small_bn"]
    path = tm.save_onnx(model, tmp_path / "m", size) if fmt == "onnx" else tm.save(model, tmp_path / "m", fmt)
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    for _ in range(25):
        damaged = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, min(len(data), 3000) if rng.random() < 0.8 else len(data)))
            damaged[pos] = int(rng.integers(0, 256))
        (tmp_path / "d").write_bytes(bytes(damaged))
        try:
            mc.load(tmp_path / "d")
        except MinicnnError as exc:
            assert "\n" not in str(exc)


def test_safetensors_header_readings_must_agree():
    """The package's reading of the header is checked against ours (a name, dtype or shape that
    differs is one line): the bytes are read at our offsets only when both parsers agree."""
    from minicnn.io.safetensors_loader import _agree

    class Slice:  # what safe_open(...).get_slice returns, as far as _agree asks
        def __init__(self, dtype, shape):
            self.dtype, self.shape = dtype, shape

        def get_dtype(self):
            return self.dtype

        def get_shape(self):
            return list(self.shape)

    ours = {"features.0.weight": {"dtype": "F32", "shape": [4, 3, 3, 3]}}
    _agree(ours, {"features.0.weight": Slice("F32", (4, 3, 3, 3))})
    for theirs in ({"features.0.weight": Slice("F16", (4, 3, 3, 3))},
                   {"features.0.weight": Slice("F32", (2, 3, 3, 3))},
                   {"features.0.bias": Slice("F32", (4,))}):  # fmt: skip
        with pytest.raises(MinicnnError, match="ambiguous"):
            _agree(ours, theirs)
