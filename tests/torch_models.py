"""torchvision's and timm's VGG module layouts in plain torch.nn (torchvision is not installable here),
with seeded non-trivial weights, and the files torch itself writes for them.

Key names are the real ones: ``features.N`` (a module per index: Conv2d, [BatchNorm2d,] ReLU,
MaxPool2d), ``avgpool`` (AdaptiveAvgPool2d), ``classifier.{0..6}`` (Linear, ReLU, Dropout, ...), and
timm's ``pre_logits.fc1`` / ``pre_logits.fc2`` (convolutions) and ``head.fc``. Weights are He-normal
with small random biases, and BatchNorm gets random gamma, beta, running mean and running variance,
so that the fold has something to fold and the scores are not near zero.
"""

from __future__ import annotations

import numpy as np
from support import oracle

VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG16_NARROW = tuple(c if c == "M" else c // 16 for c in VGG16)  # VGG16's structure, 1/16 the widths
SMALL = (8, "M", 16, 16, "M", 16, "M")  # a small VGG-style net


def _torch():
    return oracle("torch")


def features(cfg, bn: bool, in_channels: int = 3):
    nn = _torch().nn
    layers, c = [], in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1)] + ([nn.BatchNorm2d(v)] if bn else []) + [nn.ReLU()]
            c = v
    return nn.Sequential(*layers), c


def torchvision_vgg(cfg=SMALL, bn=False, hidden=32, classes=10, side=2, seed=0):
    """torchvision.models.VGG's layout: features, avgpool = AdaptiveAvgPool2d(side), classifier."""
    torch = _torch()
    nn = torch.nn

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.features, c = features(cfg, bn)
            self.avgpool = nn.AdaptiveAvgPool2d((side, side))
            self.classifier = nn.Sequential(
                nn.Linear(c * side * side, hidden), nn.ReLU(), nn.Dropout(),
                nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(),
                nn.Linear(hidden, classes),
            )  # fmt: skip

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return seeded(VGG(), seed)


def timm_vgg(cfg=VGG16_NARROW, hidden=64, classes=1000, seed=0):
    """timm's VGG layout: features, pre_logits (fc1 7x7 conv, fc2 1x1 conv), global pool, head.fc."""
    torch = _torch()
    nn = torch.nn

    class ConvMlp(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.fc1, self.act1, self.drop = nn.Conv2d(c, hidden, 7), nn.ReLU(), nn.Dropout()
            self.fc2, self.act2 = nn.Conv2d(hidden, hidden, 1), nn.ReLU()

        def forward(self, x):
            return self.act2(self.fc2(self.drop(self.act1(self.fc1(x)))))

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.global_pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(hidden, classes)

        def forward(self, x):  # timm's SelectAdaptivePool2d: adaptive average pool, then flatten
            return self.fc(torch.flatten(self.global_pool(x), 1))

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.features, c = features(cfg, False)
            self.pre_logits = ConvMlp(c)
            self.head = Head()

        def forward(self, x):
            return self.head(self.pre_logits(self.features(x)))

    return seeded(VGG(), seed)


def seeded(model, seed: int):
    """He-normal weights, biases U(-0.1, 0.1), random BatchNorm gamma, beta, running mean and
    variance (not the identity, so a fold that drops or misplaces one changes the scores); eval
    mode, float32. The one place the torch test models get their random weights."""
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0, (2.0 / fan_in) ** 0.5, generator=gen)
                if m.bias is not None:  # (torchvision's ResNet convolutions have none)
                    m.bias.uniform_(-0.1, 0.1, generator=gen)
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.3, 0.3, generator=gen)
                m.running_mean.normal_(0, 0.5, generator=gen)
                m.running_var.uniform_(0.3, 3.0, generator=gen)
                m.num_batches_tracked.fill_(100)
    return model.eval()


def images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """n random RGB images (n, size, size, 3), float64 values in 0..255, smooth enough to be photos."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (n, size // 4 + 1, size // 4 + 1, 3))
    return np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)[:, :size, :size]


def scores(model, x: np.ndarray) -> np.ndarray:
    """torch's class scores for a minicnn input batch x (N, C, H, W) float32."""
    torch = _torch()
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def save(model, path, fmt: str):
    """Write model's state dict as "zip", "legacy" (pre-1.6 pickle), "safetensors" or
    "onnx" (the last needs ``input_size``: use save_onnx)."""
    torch = _torch()
    sd = model.state_dict()
    if fmt == "zip":
        torch.save(sd, path)
    elif fmt == "legacy":
        torch.save(sd, path, _use_new_zipfile_serialization=False)
    elif fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        raise ValueError(fmt)
    return path


def save_onnx(model, path, size: int):
    import warnings

    torch = _torch()
    x = torch.zeros(1, 3, size, size)
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (x,), str(path), dynamo=False, input_names=["input"], output_names=["scores"]
        )
    return path
