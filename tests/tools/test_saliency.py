"""Saliency maps (Simonyan et al. 2013, sec. 3) against PyTorch autograd on the torch mirror."""

import numpy as np
import pytest
from support import assert_close, oracle
from torch_mirror import to_torch

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.tools.saliency import smoothgrad_noise


def torch_grad(net, x, targets):
    """dS_t/dI by torch autograd in float64 on the same weights: (N, C, H, W) numpy.

    float64 because on a random VGG16 torch's own float32 pass flips a ReLU mask near zero and
    differs from its float64 pass by ~1% (measured).
    """
    torch = oracle("torch")
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = to_torch(net, torch.float64)(xt)
    out[torch.arange(len(x)), torch.as_tensor(np.asarray(targets))].sum().backward()
    return xt.grad.numpy()


def test_max_abs_gradient_small(small_net, small_images):
    targets = [0, 4, 2]
    g = torch_grad(small_net, small_images, targets)
    assert_close(mc.saliency(small_net, small_images, targets), np.abs(g).max(axis=1), what="saliency")
    assert_close(mc.saliency(small_net, small_images, targets, signed=True), g, what="signed")
    assert_close(
        mc.saliency(small_net, small_images, targets, signed=True, times_input=True),
        g * small_images,
        what="gradient x input",
    )


def test_predicted_target_and_single_target(small_net, small_images):
    torch = oracle("torch")
    predicted = to_torch(small_net)(torch.tensor(small_images)).argmax(1).numpy()
    g = torch_grad(small_net, small_images, predicted)
    assert_close(mc.saliency(small_net, small_images), np.abs(g).max(axis=1), what="predicted")
    g3 = torch_grad(small_net, small_images, [3, 3, 3])
    assert_close(mc.saliency(small_net, small_images, 3), np.abs(g3).max(axis=1), what="int target")
    # one (C, H, W) image and a list of images are accepted too
    single = mc.saliency(small_net, small_images[1], 3)
    assert_close(single, np.abs(g3[1:2]).max(axis=1), what="single image")
    listed = mc.saliency(small_net, list(small_images), 3)
    assert_close(listed, np.abs(g3).max(axis=1), what="list of images")


def test_vgg16(vgg_image):
    """NOTE: float64. The first test image has max-pool windows whose two largest inputs differ by
    less than float32 rounding (see tests/engine/test_against_torch.py), so in float32 their switches,
    and the gradient over their receptive fields, are a coin flip between any two implementations."""
    net = mc.vgg16(seed=0).astype(np.float64)
    x, targets = vgg_image.astype(np.float64), [7, 412]
    g = torch_grad(net, x, targets)
    sal = mc.saliency(net, x, targets)
    assert sal.shape == (2, 224, 224) and sal.dtype == np.float64
    assert_close(sal, np.abs(g).max(axis=1), rtol=1e-10, what="vgg16 saliency")


def test_smoothgrad(small_net, small_images):
    """SmoothGrad = mean of torch gradients at the documented noisy copies (Smilkov et al. 2017)."""
    samples, noise, seed, targets = 5, 0.2, 4, [1, 0, 3]
    noisy = [small_images + eps for eps in smoothgrad_noise(small_images, samples, noise, seed)]
    spread = small_images.reshape(3, -1).std(axis=1)
    assert abs(np.std(noisy[0] - small_images) / (noise * np.ptp(small_images[0])) - 1) < 0.1
    assert np.all(spread > 0)
    expected = np.mean([torch_grad(small_net, xn, targets) for xn in noisy], axis=0)
    for batch_size in (1, 4, 100):  # how copies are batched must not change the result
        got = mc.saliency(
            small_net, small_images, targets, signed=True, samples=samples, noise=noise, seed=seed,
            batch_size=batch_size,
        )  # fmt: skip
        assert_close(got, expected, what=f"smoothgrad batch_size={batch_size}")
    smooth = {"samples": samples, "noise": noise, "seed": seed}
    times = mc.saliency(small_net, small_images, targets, signed=True, times_input=True, **smooth)
    expected_times = np.mean([torch_grad(small_net, xn, targets) * xn for xn in noisy], axis=0)
    assert_close(times, expected_times, what="smoothgrad of gradient x input")
    plain = mc.saliency(small_net, small_images, targets, signed=True)
    assert np.abs(plain - expected).max() > 1e-3 * np.abs(expected).max()  # the noise did something


def test_shipped_digit_model(digit_net, make_digit_images):
    x = make_digit_images(digit_net)
    g = torch_grad(digit_net, x, [0, 1, 2, 3])
    assert_close(mc.saliency(digit_net, x, [0, 1, 2, 3]), np.abs(g).max(axis=1), what="digits")


def test_bad_input(small_net, small_images):
    with pytest.raises(MinicnnError, match="out of range"):
        mc.saliency(small_net, small_images, 5)
    with pytest.raises(MinicnnError, match="out of range"):
        mc.saliency(small_net, small_images, [0, -1, 2])
    with pytest.raises(MinicnnError, match="one target per image"):
        mc.saliency(small_net, small_images, [0, 1])
    with pytest.raises(MinicnnError, match="same"):
        mc.saliency(small_net, [small_images[0], small_images[0, :, :8]], 0)
    with pytest.raises(MinicnnError, match="target"):
        mc.saliency(small_net, small_images, "best")


def test_tools_on_gpu(make_small_vgg):
    """Every gradient tool gives the CPU's arrays on the GPU (skipped without CuPy and a device)."""
    from minicnn.backend import gpu_available, to_device, to_numpy

    if not gpu_available():
        pytest.skip("no CUDA device / CuPy here")
    cpu = make_small_vgg(seed=3, gap=True)
    gpu = make_small_vgg(seed=3, gap=True).to("gpu")
    x = np.random.default_rng(7).standard_normal((2, 3, 16, 16)).astype(np.float32)
    xg = to_device(x, "gpu")
    calls = {
        "saliency": lambda net, x: mc.saliency(net, x, [0, 1], samples=3),
        "reconstruct": lambda net, x: mc.reconstruct(net, x, "relu_1", None, mode="guided"),
        "cam": lambda net, x: mc.cam(net, x, "predicted"),
        "grad_cam": lambda net, x: mc.grad_cam(net, x, 2, "conv2d_1"),
        "occlusion": lambda net, x: mc.occlusion(net, x, 1, 4, 4, fill="mean", progress=False).attribution,
        "equivalence": lambda net, x: mc.equivalence(net, x, 1).signals["deconvnet"],
    }
    for name, call in calls.items():
        assert_close(to_numpy(call(gpu, xg)), to_numpy(call(cpu, x)), what=f"{name} on GPU")
