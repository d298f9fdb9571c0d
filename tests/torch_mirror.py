"""The same network in plain torch.nn, with the same weights: the external oracle for engine and tools.

There is one torch mirror, ``minicnn.tools.captum_reference.torch_mirror``: each module is the one the
layer declares (``Layer.torch_module``; tests/engine/test_layer_coverage.py checks every kind has one),
so the tests compare the engine with the very modules that ``verify --against captum`` runs. Written
by hand in each layer (no torchvision on these machines); Flatten uses NCHW order in both frameworks,
so dense weights copy over unchanged.
"""

from __future__ import annotations

from support import oracle


def to_torch(net, dtype=None):
    """A torch.nn.Sequential equal to ``net`` (inference mode), in ``dtype`` (default: net's dtype);
    module i computes layer i. Skips the test where torch is not installed."""
    oracle("torch")
    from minicnn.tools.captum_reference import torch_mirror

    return torch_mirror(net, dtype)
