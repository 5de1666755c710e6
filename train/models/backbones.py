"""Per-frame CNN backbones: torchvision models from scratch with a 1-channel first conv.

`build_backbone(name, in_channels, width)` returns `(module, feature_dim)`: the module maps
`(B, C, H, W)` to globally pooled features `(B, F)` (the torchvision classifier is replaced by
`nn.Identity`, so torchvision's own avgpool + flatten stay in place). Every backbone is built
with `weights=None`: the paper trains ResNet-50 from scratch (ImageNet pre-training gave no gain).

    python -c "from echoweave.train.models.backbones import list_backbones; print(list_backbones())"
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import nn
from torchvision.models import mobilenet_v3_large, mobilenet_v3_small, resnet18, resnet50
from torchvision.models.resnet import BasicBlock

from echoweave.train.models.sononet import SonoNet


def _one_channel_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A fresh copy of `conv` taking `in_channels` inputs (same kernel, stride, padding)."""
    return nn.Conv2d(in_channels, conv.out_channels, kernel_size=conv.kernel_size,
                     stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                     groups=1, bias=conv.bias is not None)


def _torchvision_resnet(factory: Callable[..., nn.Module], in_channels: int) -> tuple[nn.Module, int]:
    model = factory(weights=None)
    model.conv1 = _one_channel_conv(model.conv1, in_channels)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision
    feature_dim = model.fc.in_features  # 2048 for resnet50, 512 for resnet18
    model.fc = nn.Identity()
    return model, feature_dim


def _resnet50(in_channels: int, width: int) -> tuple[nn.Module, int]:
    return _torchvision_resnet(resnet50, in_channels)


def _resnet18(in_channels: int, width: int) -> tuple[nn.Module, int]:
    return _torchvision_resnet(resnet18, in_channels)


def _mobilenet_v3(factory: Callable[..., nn.Module], in_channels: int) -> tuple[nn.Module, int]:
    # BatchNorm momentum 0.1 (PyTorch's default, as the ResNets here), not torchvision's 0.01 for
    # MobileNetV3 (tuned for hundreds of ImageNet epochs): in a short run the running statistics
    # lag the weights so far that eval mode collapses. Measured: MobileNetV3-Small stage 1 of
    # table2_cpu_distill, 4 epochs (0.71 train accuracy): held-out clips 0.08 with momentum 0.01
    # (one class for every frame; 0.81 of the frames right with batch statistics), 0.83 with 0.1.
    # Momentum is not in the state dict: old checkpoints load unchanged.
    model = factory(weights=None, norm_layer=partial(nn.BatchNorm2d, eps=0.001, momentum=0.1))
    stem = model.features[0][0]  # Conv2dNormActivation(3 -> 16, 3x3, stride 2)
    model.features[0][0] = _one_channel_conv(stem, in_channels)
    nn.init.kaiming_normal_(model.features[0][0].weight, mode="fan_out")  # as torchvision
    feature_dim = model.classifier[0].in_features  # the pooled last conv: 960 (large), 576 (small)
    model.classifier = nn.Identity()
    return model, feature_dim


def _mobilenet_v3_large(in_channels: int, width: int) -> tuple[nn.Module, int]:
    return _mobilenet_v3(mobilenet_v3_large, in_channels)


def _mobilenet_v3_small(in_channels: int, width: int) -> tuple[nn.Module, int]:
    # The phone-CPU student (README, "How to pick a backbone"): ~0.06 GMAC per 224 frame with
    # 3 input channels (torchvision's figure), ~70x fewer than ResNet-50's 4.1; large is ~0.22.
    return _mobilenet_v3(mobilenet_v3_small, in_channels)


class TinyResNet(nn.Module):
    """A four-stage ResNet of torchvision `BasicBlock`s at a chosen width, for tests and the demo.

    torchvision's `ResNet` hard-codes 64..512 channels, so the stages are assembled here from
    its `BasicBlock`: stem conv3x3/2 -> stages of width w, 2w, 4w, 8w (each stride 2 but the
    first) -> global average pool. Output `(B, 8w)`; at 64x64 a 4-frame forward takes ~ms.
    """

    def __init__(self, in_channels: int = 1, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        stages, channels = [], width
        for i, out in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or channels != out:
                downsample = nn.Sequential(nn.Conv2d(channels, out, 1, stride=stride, bias=False),
                                           nn.BatchNorm2d(out))
            stages.append(BasicBlock(channels, out, stride=stride, downsample=downsample))
            channels = out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # (B, 8w, H/16, W/16)
        return self.pool(x).flatten(1)  # (B, 8w)


def _tiny(in_channels: int, width: int) -> tuple[nn.Module, int]:
    model = TinyResNet(in_channels, width)
    return model, model.feature_dim


def _sononet(in_channels: int, width: int) -> tuple[nn.Module, int]:
    # SonoNet-{width} (train/models/sononet.py): VGG-16's convolutions with BN, 8 * width features.
    model = SonoNet(in_channels, width)
    return model, model.feature_dim


_BACKBONES: dict[str, Callable[[int, int], tuple[nn.Module, int]]] = {
    "resnet50": _resnet50,
    "resnet18": _resnet18,
    "mobilenet_v3_large": _mobilenet_v3_large,
    "tiny": _tiny,
    "sononet": _sononet,
    "mobilenet_v3_small": _mobilenet_v3_small,
}


def list_backbones() -> list[str]:
    """Names accepted by `build_backbone` (and `ModelConfig.backbone`)."""
    return list(_BACKBONES)


def check_backbone(name: str) -> None:
    """Raise ValueError naming the known backbones when `name` is not one of them."""
    if name not in _BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known backbones: {', '.join(_BACKBONES)}")


def build_backbone(name: str, in_channels: int = 1, width: int = 16) -> tuple[nn.Module, int]:
    """Build a randomly initialised backbone.

    Args:
        name: One of `list_backbones()`.
        in_channels: Input channels of the first conv (1 for grayscale).
        width: Base width, used by `tiny` and `sononet` (SonoNet-{width}) only.

    Returns:
        `(module, feature_dim)`; `module(x (B, C, H, W))` gives pooled features `(B, feature_dim)`.
    """
    check_backbone(name)
    return _BACKBONES[name](in_channels, width)
