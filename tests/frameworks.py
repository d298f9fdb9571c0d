"""Zennit and Quantus as test oracles on a machine without torchvision.

Zennit 0.5 imports ``torchvision.models.resnet`` at import time for one purpose: its ResNet
canonizer recognises torchvision's ``BasicBlock`` and ``Bottleneck`` classes by isinstance. Quantus
imports Zennit when Zennit is installed. torchvision has no CPU build on the CI machines (and pulling
it replaces the pinned CPU torch), so Zennit is installed with ``--no-deps`` (see .ci/run) and,
before either is imported, a stand-in ``torchvision`` module provides those two names as empty
``nn.Module`` subclasses. No model in the tests is an instance of them, so the canonizer that looks
for them never matches, which is what it would do with the real classes on these models too.

Only the tests use this; the minicnn package never imports torch, Zennit or Quantus.
"""

from __future__ import annotations

import importlib.util
import sys
import types

from support import oracle


def _stand_in_torchvision(torch) -> None:
    """Put a minimal ``torchvision.models.resnet`` in sys.modules, unless a real one is installed."""
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return
    package = types.ModuleType("torchvision")
    models = types.ModuleType("torchvision.models")
    resnet = types.ModuleType("torchvision.models.resnet")
    resnet.BasicBlock = type("BasicBlock", (torch.nn.Module,), {})
    resnet.Bottleneck = type("Bottleneck", (torch.nn.Module,), {})
    package.models, models.resnet = models, resnet
    package.__version__ = "0+stand-in"
    names = {"torchvision": package, "torchvision.models": models, "torchvision.models.resnet": resnet}
    sys.modules.update(names)


def zennit():
    """The zennit package (skipped on a user's machine without it, a failure in CI)."""
    _stand_in_torchvision(oracle("torch"))
    return oracle("zennit")


def quantus():
    """The quantus package (skipped on a user's machine without it, a failure in CI)."""
    _stand_in_torchvision(oracle("torch"))
    return oracle("quantus")
