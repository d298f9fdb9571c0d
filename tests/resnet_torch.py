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

BLOCKS = {
    "resnet18": ((2, 2, 2, 2), False),
    "resnet34": ((3, 4, 6, 3), False),
    "resnet50": ((3, 4, 6, 3), True),
}


def torch_resnet(name="resnet18", classes=1000, seed=0):
    """The torchvision layout of ``name`` in eval mode, float32, seeded."""
    torch = oracle("torch")
    nn = torch.nn
    counts, bottleneck = BLOCKS[name]

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
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
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

    model = ResNet()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.normal_(0, (2.0 / m.weight[0].numel()) ** 0.5, generator=gen)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1, generator=gen)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.3, 0.3, generator=gen)
                m.running_mean.normal_(0, 0.5, generator=gen)
                m.running_var.uniform_(0.3, 3.0, generator=gen)
                m.num_batches_tracked.fill_(100)
    return model.eval()


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
