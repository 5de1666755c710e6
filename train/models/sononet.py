"""SonoNet: the VGG-like 2-D base CNN of the fetal-workflow family (Baumgartner et al. 2017).

The base of the seed ``fetal_workflow_spatiotemporal.txt`` (SonoNet-64, trained from scratch).
Its feature extraction is VGG-16's convolutional part with batch normalisation: five blocks of
3x3 convolution + BN + ReLU (2, 2, 3, 3, 3 layers of w, 2w, 4w, 8w, 8w channels), a 2x2 max pool
between blocks (4 pools: the last map is 1/16 of the input side). ``width`` w is the SonoNet
variant: 64 is SonoNet-64 (14.7 M parameters), 32 and 16 the smaller published ones, 8 a tiny CPU
variant::

    x (B, C, H, W) -> blocks -> maps (B, 8w, H/16, W/16) -> global average pool -> (B, 8w)

The global average pool is `GlobalAvgPool` (``avg_pool2d`` over the whole map + flatten), not
``AdaptiveAvgPool2d(1)``: the same values, but the adaptive pool leaves a reshape in the
ExecuTorch int8 graph that XNNPACK refuses at load (see `GlobalAvgPool`).

This module is only the network (registered as the backbone ``sononet`` in `backbones.py`, so
every per-frame model can use it). SonoNet's adaptation layers (a 1x1 convolution + ReLU, then the
1x1 convolution to the classes) and the models of the family are in `fetal.py`.

    python -c "from echoweave.train.models.sononet import SonoNet; print(SonoNet(1, 64))"
"""
from __future__ import annotations

import torch
from torch import nn

#: Convolutions per block and each block's channels in multiples of the width (VGG-16's layout).
BLOCK_LAYERS = (2, 2, 3, 3, 3)
BLOCK_WIDTHS = (1, 2, 4, 8, 8)
#: Max pools (2x2, stride 2) before blocks 2..5.
POOLS = len(BLOCK_LAYERS) - 1


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    """3x3 convolution ("same" padding, no bias: BN follows), batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class GlobalAvgPool(nn.Module):
    """``(N, C, *spatial)`` -> ``(N, C)``: the mean over every dim after the channels.

    The same values as ``AdaptiveAvgPool2d(1)`` + ``flatten(1)`` (a 2-D average pool whose kernel
    is the whole map), and no parameters or buffers: state dicts and checkpoints are unchanged.

    Why not ``AdaptiveAvgPool2d(1)``: in the kit's ExecuTorch int8 (the per-frame backbone
    quantized whole, `export/executorch_format.py`), XNNPACK's quantizer gives an adaptive pool
    (and a ``mean``) the quantization parameters of its *input*, the un-pooled maps, and passes
    them through the ``flatten``; the window's ``(B*T, D) -> (B, T, D)`` unflatten before the next
    linear then carries that linear's own input parameters (observed on the pooled values, a
    smaller range). A quantized reshape whose input and output parameters differ is refused when
    the program loads ("XNNCompiler: Failed to create squeeze node ... xnn_status_invalid_parameter",
    as stfm's int8 was: its `GlobalMean`). ``avg_pool2d`` is not annotated, so the pool and the
    reshapes after it run fp32 in the same XNNPACK delegate and the linear quantizes its input once.
    stfm's plain ``mean`` works there because nothing before it is quantized; here the ReLU of
    the adaptation layer is, and the mean would inherit its parameters.

    Any rank: an inflated copy's ``(N, C, T, H, W)`` is averaged over (T, H, W) (`inflate_2d_to_3d`
    keeps this module as it is: its name does not end in ``2d``).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return nn.functional.avg_pool2d(x, tuple(x.shape[2:])).flatten(1)  # (N, C)
        return x.mean(dim=tuple(range(2, x.dim())))  # (N, C)


def sononet_map_size(input_size: int) -> int:
    """Side of SonoNet's last feature map for a square input (4 floor-halving pools)."""
    return int(input_size) // 2 ** POOLS


class SonoNet(nn.Module):
    """SonoNet's feature extraction (VGG-16 convolutions with BN) at base width ``width``.

    Attributes:
        blocks: ``nn.Sequential`` of the five blocks (blocks 2..5 start with their max pool).
        feature_dim: Channels of the last map (8 * width), the size of the pooled output.
    """

    def __init__(self, in_channels: int = 1, width: int = 64):
        super().__init__()
        blocks, cin = [], in_channels
        for i, (layers, mult) in enumerate(zip(BLOCK_LAYERS, BLOCK_WIDTHS)):
            block: list[nn.Module] = [nn.MaxPool2d(2)] if i > 0 else []
            for _ in range(layers):
                block.append(conv_bn_relu(cin, mult * width))
                cin = mult * width
            blocks.append(nn.Sequential(*block))
        self.blocks = nn.Sequential(*blocks)
        self.pool = GlobalAvgPool()  # AdaptiveAvgPool2d(1) + flatten(1), int8-safe
        self.feature_dim = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_maps(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> the last feature map ``(B, 8w, H/16, W/16)`` (also on an inflated
        copy: ``(B, C, T, H, W)`` -> ``(B, 8w, T, H/16, W/16)``)."""
        return self.blocks(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.blocks(x))  # (B, 8w)


__all__ = ["SonoNet", "GlobalAvgPool", "conv_bn_relu", "sononet_map_size", "BLOCK_LAYERS", "BLOCK_WIDTHS"]
