"""The DeconvNet and guided-backprop rules against Captum's Deconvolution and GuidedBackprop.

Captum implements both by overriding the gradient of every nn.ReLU module of the torch mirror, an
independent implementation of the same rules (Zeiler & Fergus 2013; Springenberg et al. 2014).
"""

import numpy as np
import pytest
from support import assert_close, oracle
from torch_mirror import to_torch

import minicnn as mc

CAPTUM = {"deconvnet": "Deconvolution", "guided": "GuidedBackprop", "gradient": "Saliency"}


def captum_signal(net, x, target, mode):
    torch = oracle("torch")
    attr = oracle("captum.attr")
    method = getattr(attr, CAPTUM[mode])(to_torch(net))
    kwargs = {"abs": False} if mode == "gradient" else {}
    out = method.attribute(torch.tensor(x, requires_grad=True), target=target, **kwargs)
    return out.detach().numpy()


def minicnn_signal(net, x, target, mode):
    y = net.forward(x)
    dy = np.zeros_like(y)
    dy[np.arange(len(x)), target] = 1.0
    return net.backward(dy, mode=mode)


@pytest.mark.parametrize("algorithm", ["im2col", "winograd"])
@pytest.mark.parametrize("mode", ["gradient", "deconvnet", "guided"])
def test_small_net(mode, algorithm):
    rng = np.random.default_rng(0)
    net = mc.Sequential(
        [
            mc.Conv2D(3, 8, 3, padding=1, algorithm=algorithm), mc.ReLU(), mc.MaxPool2D(2),
            mc.Conv2D(8, 8, 3, algorithm=algorithm), mc.ReLU(), mc.MaxPool2D(2), mc.Flatten(),
            mc.Dense(8 * 3 * 3, 16), mc.ReLU(), mc.Dense(16, 5),
        ],
        seed=1,
    )  # fmt: skip
    x = rng.standard_normal((4, 3, 16, 16)).astype(np.float32)
    target = [0, 3, 1, 4]
    assert_close(minicnn_signal(net, x, target, mode), captum_signal(net, x, target, mode), what=mode)


def test_modes_really_differ():
    """The three rules give three different signals on a real network (else the tests above are weak)."""
    rng = np.random.default_rng(2)
    net = mc.Sequential([mc.Conv2D(3, 8, 3), mc.ReLU(), mc.Conv2D(8, 8, 3), mc.ReLU(), mc.Flatten(),
                         mc.Dense(8 * 4 * 4, 3)], seed=0)  # fmt: skip
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    signals = {m: minicnn_signal(net, x, [0, 1], m) for m in mc.MODES}
    for a, b in [("gradient", "deconvnet"), ("gradient", "guided"), ("deconvnet", "guided")]:
        assert np.abs(signals[a] - signals[b]).max() > 1e-3 * np.abs(signals[a]).max()


@pytest.mark.parametrize("mode", ["deconvnet", "guided"])
def test_vgg16(mode):
    """The whole VGG16 at 224x224 (Winograd convolutions from block1_conv2 on).

    NOTE: float64, for the reason given in test_against_torch.test_vgg16_scores_and_input_gradient_
    float64: this input has max-pool windows whose two largest values differ by 3e-8 of the layer's
    range, below float32 rounding, so in float32 their switches are a coin flip between any two
    implementations. The float32 kernels are compared layer by layer (test_against_torch,
    test_winograd) and on the small net above, which has no such near-ties.
    """
    net = mc.vgg16(seed=0).astype(np.float64)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 224, 224)) * 50
    assert_close(minicnn_signal(net, x, [7], mode), captum_signal(net, x, [7], mode), rtol=1e-10, what=mode)
