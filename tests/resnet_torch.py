"""torchvision's ResNet in plain torch.nn (torchvision is not installable here), with its module names.

BasicBlock and Bottleneck (v1.5: the stride on the 3x3 convolution), ``downsample`` = Sequential(1x1
strided conv, BatchNorm2d), the stem conv1 / bn1 / relu / maxpool(3, 2, 1), layer1..layer4,
avgpool = AdaptiveAvgPool2d(1), fc: so ``state_dict()`` has torchvision's keys, and torch.save
writes the file a torchvision user would have. Weights are He-normal and every BatchNorm gets
random gamma, beta, running mean and running variance (not the identity), so a fold that drops or
misplaces one changes the scores.
"""

from __future__ import annotations

from support import oracle
from torch_models import seeded

BLOCKS = {
    "resnet18": ((2, 2, 2, 2), False),
    "resnet34": ((3, 4, 6, 3), False),
    "resnet50": ((3, 4, 6, 3), True),
    "wide_resnet50_2": ((3, 4, 6, 3), True),
}


def torch_resnet(name="resnet18", classes=1000, seed=0):
    """The torchvision layout of ``name`` in eval mode, float32, seeded."""
    torch = oracle("torch")
    nn = torch.nn
    counts, bottleneck = BLOCKS[name]
    inner = 2 if name.startswith("wide_") else 1  # torchvision's width_per_group=128 for wide ResNets

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, cin, width, stride, downsample):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.downsample = downsample

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(out + identity)

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, cin, width, stride, downsample):
            super().__init__()
            mid = width * inner
            self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(mid)
            self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(mid)
            self.conv3 = nn.Conv2d(mid, width * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(width * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(out + identity)

    block = Bottleneck if bottleneck else BasicBlock

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = 64
            for stage, (count, width) in enumerate(zip(counts, (64, 128, 256, 512)), start=1):
                blocks = []
                for j in range(count):
                    stride = 2 if stage > 1 and j == 0 else 1
                    down = None
                    if stride != 1 or cin != width * block.expansion:
                        down = nn.Sequential(
                            nn.Conv2d(cin, width * block.expansion, 1, stride, bias=False),
                            nn.BatchNorm2d(width * block.expansion),
                        )
                    blocks.append(block(cin, width, stride, down))
                    cin = width * block.expansion
                setattr(self, f"layer{stage}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return seeded(ResNet(), seed)


def saved_resnet18(folder, seed: int, x_seed: int):
    """(torch ResNet-18, 10 classes, float64, random BatchNorm statistics; the path of its
    torch.save'd state dict in ``folder``; minicnn's network loaded from it, float64; x (2, 3, 64,
    64) float64 standard normal): the fixture of the tool tests on a ResNet file."""
    import numpy as np

    import minicnn as mc

    torch = oracle("torch")
    model = torch_resnet("resnet18", classes=10, seed=seed)
    path = folder / "resnet18.pth"
    torch.save(model.state_dict(), path)
    net = mc.load(path).astype(np.float64)
    x = np.random.default_rng(x_seed).standard_normal((2, 3, 64, 64))
    return model.to(torch.float64), path, net, x


def random_statistics(net, seed=0):
    """A minicnn network (a zoo ResNet keeps its BatchNorm2D layers, in torch's initial state: the
    identity) with BatchNorm gamma, beta and running statistics drawn as ``seeded`` draws torch's,
    and small random biases; returned in float64."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for layer in net.layers:
        params = layer.params
        if "running_var" in params:
            c = len(params["running_var"])
            layer.weight, layer.bias = rng.uniform(0.5, 1.5, c), rng.uniform(-0.3, 0.3, c)
            layer.running_mean, layer.running_var = rng.normal(0, 0.5, c), rng.uniform(0.3, 3.0, c)
        elif params.get("bias") is not None:
            layer.bias = rng.uniform(-0.1, 0.1, params["bias"].shape)
    return net.astype(np.float64)


def rule_relu(mode: str):
    """A torch module computing max(x, 0) whose backward follows ``mode`` (minicnn.rules.MODES):
    gradient dy [x > 0]; deconvnet max(dy, 0) (Zeiler & Fergus 2013, sec. 2.1); guided both
    (Springenberg et al. 2015, fig. 1). torch's own chain rule does the rest, adding the signals
    where branches meet."""
    torch = oracle("torch")

    class RuleReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, dy):
            (x,) = ctx.saved_tensors
            if mode == "gradient":
                return dy * (x > 0)
            if mode == "deconvnet":
                return dy.clamp(min=0)
            return dy.clamp(min=0) * (x > 0)

    class Rule(torch.nn.Module):
        def forward(self, x):
            return RuleReLU.apply(x)

    return Rule()


def with_rule(model, mode: str):
    """``model`` with every nn.ReLU replaced, in place, by ``rule_relu(mode)``; returns it."""
    torch = oracle("torch")
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.ReLU):
                setattr(parent, name, rule_relu(mode))
    return model
