"""CAM (Zhou et al. 2016) and Grad-CAM (Selvaraju et al. 2017) against direct PyTorch computations."""

import numpy as np
import pytest
from support import assert_close, oracle
from torch_mirror import to_torch

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.tools.cam import upsample_bilinear


def torch_gradcam(net, x, targets, layer, size=None):
    """Grad-CAM in torch: A = the mirror's output at ``layer``, autograd for dS/dA, F.interpolate."""
    torch = oracle("torch")
    model = to_torch(net, torch.float64)
    i = net.index(layer)
    feats = model[: i + 1](torch.tensor(x, dtype=torch.float64)).detach().requires_grad_()
    scores = model[i + 1 :](feats)
    scores[torch.arange(len(x)), torch.as_tensor(np.asarray(targets))].sum().backward()
    alpha = feats.grad.mean(dim=(2, 3), keepdim=True)
    maps = torch.relu((alpha * feats).sum(1, keepdim=True))
    if size is not None:
        maps = torch.nn.functional.interpolate(maps, size=size, mode="bilinear", align_corners=False)
    return maps[:, 0].detach().numpy()


@pytest.fixture(scope="module")
def gap_small(make_small_vgg):
    return make_small_vgg(seed=2, size=20, classes=6, gap=True)


@pytest.fixture(scope="module")
def gap_images():
    return np.random.default_rng(5).standard_normal((3, 3, 20, 20)).astype(np.float32)


def check_cam(net, x, targets):
    """Sum of the CAM over the map / (h*w) + bias == the class score; upsampling == torch's."""
    torch = oracle("torch")
    model = to_torch(net, torch.float64)
    scores = model(torch.tensor(x, dtype=torch.float64)).numpy()
    maps = mc.cam(net, x, targets, upsample=False)
    dense = [layer for layer in net.layers if layer.kind == "Dense"][-1]
    h, w = maps.shape[1:]
    got = maps.sum(axis=(1, 2)) / (h * w) + dense.bias[targets]
    assert_close(got, scores[np.arange(len(x)), targets], what="CAM mean + bias vs score")
    up = torch.nn.functional.interpolate(
        torch.tensor(maps[:, None], dtype=torch.float64), size=x.shape[2:], mode="bilinear",
        align_corners=False,
    )[:, 0].numpy()  # fmt: skip
    full = mc.cam(net, x, targets)
    assert full.shape == (len(x), *x.shape[2:])
    assert_close(full, up, what="CAM upsampled")


@pytest.mark.parametrize(("small", "big"), [((5, 5), (20, 20)), ((7, 5), (23, 16)), ((3, 9), (3, 10))])
def test_upsample_bilinear(small, big):
    torch = oracle("torch")
    maps = np.random.default_rng(1).standard_normal((2, *small)).astype(np.float32)
    expected = torch.nn.functional.interpolate(
        torch.tensor(maps[:, None]), size=big, mode="bilinear", align_corners=False
    )[:, 0].numpy()
    assert_close(upsample_bilinear(maps, big), expected, what=f"{small} -> {big}")


def test_cam_small(gap_small, gap_images):
    check_cam(gap_small, gap_images, np.array([0, 5, 3]))


def test_cam_is_grad_cam_for_gap_nets(gap_small, gap_images):
    """Selvaraju et al. sec. 3.1: at the GAP input Grad-CAM = ReLU(CAM) / (h*w)."""
    cam = mc.cam(gap_small, gap_images, 2, upsample=False)
    gc = mc.grad_cam(gap_small, gap_images, 2, layer="conv2d_3", upsample=False)
    h, w = cam.shape[1:]
    assert_close(gc, np.maximum(cam, 0) / (h * w), what="grad-cam vs cam")
    assert (cam < 0).any() and (cam > 0).any()  # the ReLU matters here


@pytest.mark.parametrize(
    ("layer", "used"),
    [("conv2d_1", "relu_1"), ("relu_2", "relu_2"), ("maxpool2d_0", "maxpool2d_0"), (None, "relu_3")],
)
def test_grad_cam_small(gap_small, gap_images, layer, used):
    targets = [1, 4, 0]
    x = gap_images
    expected = torch_gradcam(gap_small, x, targets, used)
    got = mc.grad_cam(gap_small, x, targets, layer=layer, upsample=False)
    assert_close(got, expected, what=f"grad-cam {layer}")
    up = torch_gradcam(gap_small, x, targets, used, size=(20, 20))
    assert_close(mc.grad_cam(gap_small, x, targets, layer=layer), up, what=f"upsampled {layer}")


def test_grad_cam_vgg16(vgg16, vgg_image):
    targets = [7, 412]
    expected = torch_gradcam(vgg16, vgg_image, targets, "block5_conv3_relu", size=(224, 224))
    got = mc.grad_cam(vgg16, vgg_image, targets, layer="block5_conv3")
    assert got.shape == (2, 224, 224) and got.dtype == np.float32
    assert_close(got, expected, what="vgg16 block5_conv3")


def test_shipped_gap_model(gap_net, make_digit_images):
    x = make_digit_images(gap_net)
    check_cam(gap_net, x, np.array([0, 3, 7, 9]))


def test_shipped_digit_model_grad_cam(digit_net, make_digit_images):
    torch = oracle("torch")
    x = make_digit_images(digit_net)
    predicted = to_torch(digit_net, torch.float64)(torch.tensor(x, dtype=torch.float64)).argmax(1).numpy()
    got = mc.grad_cam(digit_net, x, "predicted", upsample=False)
    shapes = digit_net.shapes(x.shape[1:])
    relus = [
        la.name for la, s in zip(digit_net.layers, shapes, strict=True) if la.kind == "ReLU" and len(s) == 3
    ]
    assert_close(got, torch_gradcam(digit_net, x, predicted, relus[-1]), what="digits grad-cam")


def test_bad_input(small_net, small_images, gap_small, gap_images):
    with pytest.raises(MinicnnError, match="GlobalAvgPool2D -> Dense"):
        mc.cam(small_net, small_images, 0)
    with pytest.raises(MinicnnError, match="out of range"):
        mc.cam(gap_small, gap_images, 6)
    with pytest.raises(MinicnnError, match="choose one of: conv2d_0"):
        mc.grad_cam(small_net, small_images, 0, layer="dense_0")
    with pytest.raises(MinicnnError, match="layers are"):
        mc.grad_cam(small_net, small_images, 0, layer="block5_conv3")
    with pytest.raises(MinicnnError, match="out of range"):
        mc.grad_cam(small_net, small_images, [0, 1, 99])
