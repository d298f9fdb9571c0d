"""Class models (Simonyan et al. 2013, sec. 2), the shared ascent loop and the regularisers.

Oracles: the same gradient-ascent loop written in PyTorch autograd (float64), torch autograd for
the penalties, scipy.ndimage and numpy.percentile for the input modifiers, and the shipped digit
models (the class model must be recognised as its class).
"""

from __future__ import annotations

import numpy as np
import pytest
from support import assert_close, biased, oracle
from torch_mirror import to_torch

import minicnn as mc
from minicnn.errors import MinicnnError
from minicnn.io.preprocess import CONVENTIONS, preprocess
from minicnn.tools import modifiers, penalties
from minicnn.tools.ascent import MEAN_SUBTRACTED, split_regularizers
from minicnn.tools.modifiers import Clip, GaussianBlur, Jitter, L2Decay, NormClip, gaussian_blur
from minicnn.tools.penalties import L2Penalty


def test_ascent_matches_torch_loop(make_small_vgg):
    """Three plain ascent steps on S_c - l2 ||I||^2 from zero, for two classes at once."""
    torch = oracle("torch")
    net = biased(make_small_vgg(seed=2))
    targets, lr, l2, steps = [1, 3], 0.5, 0.05, 3
    result = mc.class_model(net, targets, steps=steps, lr=lr, l2=l2)
    model = to_torch(net)
    x = torch.zeros(2, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    history = []
    for _ in range(steps):
        obj = model(x)[[0, 1], targets] - l2 * (x * x).sum(dim=(1, 2, 3))
        history.append(obj.detach().numpy())
        (grad,) = torch.autograd.grad(obj.sum(), x)
        with torch.no_grad():
            x += lr * grad
    assert_close(result.image, x.detach().numpy(), rtol=1e-7, what="image")
    assert_close(result.history, np.stack(history, axis=1), rtol=1e-7, what="history")
    assert result.image.shape == (2, 3, 16, 16) and result.display.shape == (2, 16, 16, 3)
    assert result.display.min() >= 0 and result.display.max() <= 1


def test_l2_penalty_gradient():
    torch = oracle("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4))
    ref = np.random.default_rng(1).standard_normal((3, 5, 4))
    value, grad = L2Penalty().penalty(x, ref)
    t = torch.tensor(x, requires_grad=True)
    v = ((t - torch.tensor(ref)) ** 2).sum(dim=(1, 2, 3))
    (g,) = torch.autograd.grad(v.sum(), t)
    assert_close(value, v.detach().numpy(), rtol=1e-12)
    assert_close(grad, g.numpy(), rtol=1e-12)


def test_gaussian_blur_of_an_impulse_is_the_separable_kernel():
    sigma = 1.0
    x = np.zeros((1, 1, 15, 15))
    x[0, 0, 7, 7] = 1.0
    taps = np.exp(-0.5 * (np.arange(-3, 4) / sigma) ** 2)
    taps /= taps.sum()
    expected = np.zeros((15, 15))
    expected[4:11, 4:11] = np.outer(taps, taps)
    assert_close(gaussian_blur(x, sigma)[0, 0], expected, rtol=1e-12)
    flat = np.full((1, 2, 6, 6), 0.3)  # reflection at the edges keeps a constant image constant
    assert_close(gaussian_blur(flat, 2.0), flat, rtol=1e-12)


def test_modifiers():
    ref = np.zeros((1, 4, 4))
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)) * 3
    assert np.allclose(L2Decay(0.25).after(x, 0, ref), 0.75 * x)
    clipped = Clip(-1, 1).after(x, 0, ref)
    assert (
        clipped.min() >= -1 and clipped.max() <= 1 and np.allclose(clipped[np.abs(x) < 1], x[np.abs(x) < 1])
    )
    kept = NormClip(50).after(x, 0, ref)
    assert ((kept != 0).reshape(2, -1).sum(axis=1) == 8).all()  # the stronger half survives
    blur = GaussianBlur(1.0, every=3)
    assert blur.after(x, 0, ref) is x and not np.allclose(blur.after(x, 2, ref), x)
    rng = np.random.default_rng(5)
    seen, undo = Jitter(2).transform(x, rng)
    while undo is None:
        seen, undo = Jitter(2).transform(x, rng)
    assert not np.allclose(seen, x) and np.allclose(undo(seen), x)


def test_jitter_gradient_is_rolled_back(make_small_vgg):
    """With jitter, each step's gradient is that of the shifted image, shifted back."""
    torch = oracle("torch")
    net = biased(make_small_vgg(seed=3))
    result = mc.class_model(net, 2, steps=1, lr=1.0, l2=0.0, regularizers=[Jitter(3)], seed=7)
    model = to_torch(net)
    (dy, dx) = np.random.default_rng(7).integers(-3, 4, size=2)  # the loop's rng, seeded with 7
    x = torch.zeros(1, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(model(torch.roll(x, (int(dy), int(dx)), dims=(2, 3)))[0, 2], x)
    assert_close(result.image, g.numpy(), rtol=1e-9)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target": 5}, "out of range"),
        ({"target": -1}, "out of range"),
        ({"target": [0, 9]}, "out of range"),
        ({"target": 1, "steps": 0}, "steps"),
        ({"target": 1, "lr": -0.1}, "lr"),
        ({"target": 1, "l2": -1.0}, "l2"),
        ({"target": 1, "regularizers": ["tv"]}, "regularizers are penalties"),
        ({"target": 1, "optimizer": "lbfgs"}, "optimizer"),
        ({"target": 1, "input_shape": (3, 2, 2)}, "smaller"),
    ],
)
def test_bad_input(make_small_vgg, kwargs, message):
    with pytest.raises(MinicnnError, match=message):
        mc.class_model(make_small_vgg(seed=0), **kwargs)


def test_dead_start_warns(make_small_vgg):
    net = make_small_vgg(seed=0)
    for layer in net.layers:
        if layer.has_params:
            layer.bias = layer.bias - 1.0  # every ReLU off at the black image
    with pytest.warns(UserWarning, match="zero gradient"):
        result = mc.class_model(net, 0, steps=2)
    assert not result.image.any()
    with pytest.raises(MinicnnError, match="mean_image"):
        mc.class_model(net, 0, steps=2, mean_image=np.zeros((3, 8, 8)))


@pytest.mark.parametrize("which", ["digit_net", "gap_net"])
def test_shipped_models_recognise_their_class_models(which, request):
    """Every class: the score rises over the run and the model's top-1 class is that class.

    The shipped models are dead at the black image (first biases <= 0: zero gradient), and their
    files store no mean image, so the start (the paper's "zero" of mean-subtracted input) is the
    mean held-out digit, the best estimate of the training mean the repository ships.
    """
    from minicnn.paths import WEIGHTS_DIR

    net = request.getfixturevalue(which)
    mean = np.load(WEIGHTS_DIR / "mnist_heldout.npz")["images"].mean(axis=0) / 255.0
    classes = list(range(len(net.meta["class_names"])))
    result = mc.class_model(net, classes, steps=40, mean_image=mean[None])
    score = result.info["objective"]
    assert (score[:, -1] > score[:, 0] + 1).all(), score[:, [0, -1]]
    top1 = net.forward(result.image).argmax(axis=1)
    assert list(top1) == classes


CAFFE_MEAN_RGB = np.array([123.68, 116.779, 103.939])  # Keras's ImageNet mean pixel, R, G, B


def test_display_shows_the_mean_image_in_its_true_colours():
    """A "caffe" network's zero input is the ImageNet mean pixel: it must be drawn as that pixel
    (123.68, 116.779, 103.939) / 255, a warm grey, not stretched to orange (R 1, G 0.65, B 0)."""
    from minicnn.tools.ascent import to_display

    net = mc.Sequential([mc.Flatten()], meta={"preprocess": "caffe"})
    shown = to_display(net, np.zeros((1, 3, 4, 5), np.float32))
    assert_close(shown, np.broadcast_to(CAFFE_MEAN_RGB / 255, (1, 4, 5, 3)), rtol=1e-6)


def test_display_keeps_the_hue_of_a_colour_image():
    """A synthetic colour image: the mean pixel plus an orange-red deviation d = t * (1, 0.4, 0.1)
    (R, G, B, t varying over the image). Drawn, the deviation from the mean must keep its channel
    ratios (one scale for all channels), its strong values must reach half the range, and the
    channels must not be stretched separately (which would make every pixel's deviation grey)."""
    from minicnn.tools.ascent import to_display

    net = mc.Sequential([mc.Flatten()], meta={"preprocess": "caffe"})
    t = np.linspace(-300, 300, 20 * 20).reshape(20, 20)  # a ramp far outside the pixel range
    hue = np.array([1.0, 0.4, 0.1])
    rgb = t[..., None] * hue  # (H, W, 3): the deviation from the mean pixel, R, G, B
    x = rgb[..., ::-1].transpose(2, 0, 1)[None].astype(np.float32)  # caffe input: BGR, mean removed
    shown = to_display(net, x)[0].astype(np.float64) * 255 - CAFFE_MEAN_RGB
    inside = np.abs(t) < 0.9 * np.percentile(np.abs(t), 99.5) * (103.9 / 300)  # no channel clipped
    assert inside.sum() > 50
    scale = shown[inside][:, 0] / rgb[inside][:, 0]  # one scale s, whatever the channel
    assert_close(shown[inside], scale[:, None] * rgb[inside], rtol=1e-4, atol=0.05, what="hue")
    assert np.ptp(scale) < 1e-3 * scale.mean()
    expected = 127.5 / (np.percentile(np.abs(rgb), 99.5))  # the stated rule: p99.5 -> half the range
    assert scale.mean() == pytest.approx(expected, rel=1e-3)


def test_display_without_a_convention_is_grey_at_the_reference():
    """With no known pixel scale ("none") the reference is mid-grey and a constant deviation is
    drawn at half the range above it, equal in every channel."""
    from minicnn.tools.ascent import to_display

    flat = to_display(mc.Sequential([mc.Flatten()], meta={}), np.full((1, 3, 3, 3), 2.0))
    assert_close(flat, np.ones((1, 3, 3, 3)), rtol=1e-6)  # 127.5 + 127.5 of 255
    unit = mc.Sequential([mc.Flatten()], meta={"preprocess": "unit"})  # black reference, 0..1 pixels
    assert_close(to_display(unit, np.full((1, 1, 3, 3), 0.2)), np.full((1, 3, 3, 1), 0.5), rtol=1e-6)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.7])
def test_blur_with_sigma_is_scipy_gaussian_filter(sigma):
    """GaussianBlur(sigma) blurs x - ref exactly as scipy.ndimage.gaussian_filter with that sigma
    (radius ceil(3 sigma), mode "mirror": NumPy's "reflect" padding)."""
    ndimage = oracle("scipy.ndimage")
    x = np.random.default_rng(3).standard_normal((2, 3, 13, 14))
    ref = np.random.default_rng(4).standard_normal((3, 13, 14))
    radius = int(np.ceil(3 * sigma))
    expected = ref + ndimage.gaussian_filter(
        x - ref, sigma=(0, 0, sigma, sigma), mode="mirror", truncate=radius / sigma
    )
    assert_close(GaussianBlur(sigma, every=1).after(x, 0, ref), expected, rtol=1e-12)
    assert_close(gaussian_blur(x - ref, sigma), expected - ref, rtol=1e-12)


@pytest.mark.parametrize("percentile", [0.0, 20.0, 50.0, 87.5])
def test_norm_clip_percentile_is_numpy_percentile(percentile):
    x = np.random.default_rng(5).standard_normal((3, 2, 6, 7))
    ref = np.random.default_rng(6).standard_normal((2, 6, 7))
    expected = x.copy()
    for i in range(len(x)):
        norms = np.sqrt(((x[i] - ref) ** 2).sum(axis=0))  # (H, W)
        drop = norms < np.percentile(norms, percentile)
        expected[i][:, drop] = ref[:, drop]
    assert_close(NormClip(percentile).after(x, 0, ref), expected, rtol=1e-12)


def test_decay_and_clip_numbers():
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 5)) * 2
    ref = np.random.default_rng(8).standard_normal((3, 4, 5))
    assert_close(L2Decay(0.1).after(x, 0, ref), ref + 0.9 * (x - ref), rtol=1e-12)
    assert_close(Clip(-0.5, 1.5).after(x, 0, ref), np.clip(x, -0.5, 1.5), rtol=0)


def test_two_families():
    """Penalties carry a weight; input modifiers carry their own honest parameters, and no weight."""
    assert all(
        issubclass(c, penalties.Penalty) for c in (L2Penalty, penalties.AlphaNorm, penalties.TotalVariation)
    )
    assert all(
        issubclass(c, modifiers.InputModifier) for c in (Jitter, GaussianBlur, Clip, NormClip, L2Decay)
    )
    assert GaussianBlur(1.5).sigma == 1.5 and NormClip(30).percentile == 30 and L2Decay(0.2).fraction == 0.2
    assert Jitter(3).pixels == 3 and "weight" not in vars(GaussianBlur(1.0))
    regs = [Jitter(1), L2Penalty(0.5), GaussianBlur(1.0), penalties.TotalVariation(0.1), Clip()]
    pens, mods = split_regularizers(regs)
    assert pens == (regs[1], regs[3]) and mods == (regs[0], regs[2], regs[4])  # order kept in each
    with pytest.raises(MinicnnError, match="sigma"):
        GaussianBlur(0.0)
    with pytest.raises(MinicnnError, match="percentile"):
        NormClip(101)
    with pytest.raises(MinicnnError, match="fraction"):
        L2Decay(1.0)


def test_old_weight_names_warn_and_keep_their_meaning():
    x = np.random.default_rng(9).standard_normal((2, 1, 8, 8))
    ref = np.zeros((1, 8, 8))
    with pytest.warns(DeprecationWarning, match="sigma"):
        blur = GaussianBlur(weight=1.3, every=1)
    assert_close(blur.after(x, 0, ref), GaussianBlur(1.3, every=1).after(x, 0, ref), rtol=0)
    with pytest.warns(DeprecationWarning, match="percentile"):
        clip = NormClip(weight=40)
    assert clip.percentile == 40
    with pytest.warns(DeprecationWarning, match="fraction"):
        decay = L2Decay(weight=0.3)
    assert decay.fraction == 0.3
    with pytest.warns(DeprecationWarning, match="sigma"):
        assert blur.weight == 1.3
    with pytest.warns(DeprecationWarning, match="no weight"):
        assert Jitter(2).weight == 1.0


def test_mean_subtracted_conventions_come_from_preprocess():
    assert MEAN_SUBTRACTED == {"caffe", "torch"} and MEAN_SUBTRACTED <= set(CONVENTIONS)
    for c in CONVENTIONS:  # zero input is the mean image exactly where the convention removes a mean
        black = preprocess(np.zeros((1, 2, 2, 3)), c)
        assert bool(black.any()) == (c in MEAN_SUBTRACTED)
