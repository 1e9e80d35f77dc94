"""CIFAR models of the paper's experiments: ResNet-18, ResNet-50 (3x3 stem, no max-pool) and VGG-11
with batch norm. No torchvision: these are the standard CIFAR definitions, written here.

`width` multiplies every channel count (1.0 is the published architecture; 0.25 gives a model small
enough for CPU runs). Parameter counts at width 1 and 10 classes:
11,173,962 / 23,520,842 / 9,231,114.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from lpcheck import checks

__all__ = ["resnet18", "resnet50", "vgg11", "build", "MODELS"]


def _ch(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


def _check(num_classes, width) -> tuple:
    """num_classes an integer >= 1, width a finite number > 0 (numbers as torch takes them)."""
    num_classes = checks.integer("num_classes", num_classes, low=1)
    width = checks.real("width", width, low=0.0, low_open=True)
    return num_classes, width


class _Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(cin, planes, stride)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        return torch.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


def _shortcut(cin, cout, stride):
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    """CIFAR ResNet: 3x3 stem with stride 1 and no max-pool, four stages, global average pool."""

    def __init__(self, block, num_blocks, num_classes=10, width=1.0):
        super().__init__()
        num_classes, width = _check(num_classes, width)
        stem = _ch(64, width)
        self.conv1 = nn.Conv2d(3, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        layers, cin = [], stem
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), num_blocks)):
            planes = _ch(planes, width)
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(block(cin, planes, stride))
                cin = planes * block.expansion
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = self.layers(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


class VGG(nn.Module):
    """CIFAR VGG with batch norm after every convolution and one linear classifier."""

    CONFIG = {"vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")}

    def __init__(self, name="vgg11", num_classes=10, width=1.0):
        super().__init__()
        if not isinstance(name, str) or name not in self.CONFIG:
            raise ValueError(f"name must be one of {sorted(self.CONFIG)}, got {name!r}")
        num_classes, width = _check(num_classes, width)
        layers, cin = [], 3
        for v in self.CONFIG[name]:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                v = _ch(v, width)
                layers += [
                    nn.Conv2d(cin, v, 3, padding=1),
                    nn.BatchNorm2d(v),
                    nn.ReLU(inplace=True),
                ]
                cin = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not on this platform
        return None


def _fitting(cls, *args, num_classes, width):
    """cls(*args, num_classes, width) after checking both and that its parameters fit in this
    machine's memory (counted on the meta device, which allocates nothing): width = 1e6 is a
    ValueError naming it, not an allocation of terabytes or a crash deep in torch."""
    num_classes, width = _check(num_classes, width)
    try:
        with torch.device("meta"):
            count = sum(
                p.numel() for p in cls(*args, num_classes=num_classes, width=width).parameters()
            )
    except (RuntimeError, TypeError, OverflowError):  # sizes beyond int64
        count = None
    memory, itemsize = (
        _physical_memory(),
        torch.empty((), dtype=torch.get_default_dtype()).element_size(),
    )
    if count is None or (memory is not None and count * itemsize > memory):
        size = (
            "more parameters than an int64 counts"
            if count is None
            else f"{count:,} parameters ({count * itemsize / 2**30:.1f} GiB)"
        )
        raise ValueError(
            f"width = {width!r} and num_classes = {num_classes} make a model with {size}, more "
            f"than this machine's memory ({(memory or 0) / 2**30:.1f} GiB); width 1.0 is the "
            "published size"
        )
    return cls(*args, num_classes=num_classes, width=width)


def resnet18(num_classes=10, width=1.0) -> ResNet:
    return _fitting(ResNet, _Basic, (2, 2, 2, 2), num_classes=num_classes, width=width)


def resnet50(num_classes=10, width=1.0) -> ResNet:
    return _fitting(ResNet, _Bottleneck, (3, 4, 6, 3), num_classes=num_classes, width=width)


def vgg11(num_classes=10, width=1.0) -> VGG:
    return _fitting(VGG, "vgg11", num_classes=num_classes, width=width)


MODELS = {"resnet18": resnet18, "resnet50": resnet50, "vgg11": vgg11}


def build(name: str, num_classes: int = 10, width: float = 1.0) -> nn.Module:
    """A model by name (one of MODELS), or ValueError listing the names."""
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {name!r}")
    num_classes, width = _check(num_classes, width)
    return MODELS[name](num_classes=num_classes, width=width)
