"""Models built for verify's tests (tests/tools/test_diagnosis.py, tests/cli/test_verify_cli.py)."""

from __future__ import annotations

import numpy as np

import minicnn as mc


def near_tie_net():
    """(net float32, x float32 (1, 3, 16, 16)): conv2's bias cancels each channel's output at one
    pixel up to the float32 rounding of the bias (~1e-8 of it), so float32 passes that add in other
    orders (minicnn's lowering, torch's) put those ReLU inputs on either side of 0, while float64
    sees their sign clearly."""
    import copy

    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    net = mc.Sequential(
        [mc.Conv2D(3, 32, 3, padding=1, name="conv1"), mc.ReLU(name="relu1"),
         mc.Conv2D(32, 16, 3, padding=1, name="conv2"), mc.ReLU(name="relu2"),
         mc.Flatten(name="flat"), mc.Dense(16 * 16 * 16, 4, name="fc")],
        meta={"preprocess": "none", "input_shape": [3, 16, 16]}, seed=1,
    )  # fmt: skip
    conv = net["conv2"]
    wide = copy.deepcopy(net).astype(np.float64)
    z = wide.run(x.astype(np.float64)).output("conv2") - conv.bias[None, :, None, None]
    conv.bias = np.array([-z[0, k, k % 16, (5 * k) % 16] for k in range(16)], np.float32)
    return net, x
