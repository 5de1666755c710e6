"""`stfm`: EV9V's Spatio-Temporal Fusion Model, a dual-stream CNN-LSTM (window-only).

The seed is ``ev9v_stfm_abstract.txt``; the layer-by-layer reference is bgx666/stfm (MIT),
``models_enhanced.py`` (``EnhancedSTFM``: ``SharedBackbone``, ``SpatialHead``, ``TemporalHead``).
Written here from that description, on the kit's own backbones (from scratch, 1 channel)::

    clip (B, T, C, H, W) -> normalise -> shared stem + first residual stage, every frame
        (B*T, C1, H/4, W/4) for a torchvision ResNet (H/2 for `tiny`)
      ├─ spatial stream, centre frame t = T // 2:
      │    remaining ResNet stages -> global average pool -> dropout 0.3 -> Linear -> (B, 128)
      └─ temporal stream, all T frames:
           conv3x3/2 -> 32 (BN, ReLU) -> residual block /2 -> 48 -> residual block /2 -> 64
           -> global average pool -> dropout 0.2 -> (B, T, 64)
           -> 2-layer LSTM (hidden 512, dropout 0.3 between layers; `UnrolledLSTM`)
           -> last step -> dropout 0.3 -> Linear -> (B, 128)
    concatenate (B, 256) -> dropout (``cfg.dropout``, 0.5 in the reference) -> Linear -> 128
        -> ReLU -> dropout 0.3 -> Linear -> logits (B, K)

Clips of 5 frames, 5 frames apart (``frames: 5, frame_stride: 5`` in the recipes: a window spans
21 frames with the spatial stream on its middle frame, as the reference's clips of
``clip_length=5, clip_interval=5`` around a centre frame). Sizes: ``lstm_hidden`` (512),
``lstm_layers`` (2), ``stream_dim`` (128) in `ModelConfig`; the other dropouts are the
reference's constants below.

**The graph returns logits.** Evidence (``softplus(logits)``), Dirichlet parameters and the
uncertainty are computed outside it: by the evidential loss in training
(`echoweave.train.engine.losses.reedl_loss`) and by the evidential fusion of key clips on the
edge (`echoweave.edge.evidential.fuse`). The reference does the same (its network ends in the
linear layer; ``losses.reedl_loss``, ``get_uncertainty`` and ``trainSelective.test`` apply the
softplus), and logits keep every kit path unchanged: the softmax of validation, parity (SQNR on
the output) and the edge `Classifier` pick the same class as the evidence (softplus is monotonic).

Differences from the reference, each for the edge: the two streams' 128-d embeddings are not
concatenated in the graph but each goes through its half of the fusion layer and the halves are
summed (the same function; a ``cat`` before a linear broke the ExecuTorch int8 program of
``two_stream``, train/models/howard.py); the LSTM is unrolled into per-gate linears (no
``aten.lstm`` in an exported graph); the centre frame is taken with a slice (a select does not
delegate). The reference's ``SharedBackbone`` and ``SpatialHead`` come from two separately
loaded ImageNet ResNets; here one ResNet from scratch is split in two (`split_resnet`), so the
architecture is the same and nothing is downloaded. Its activation checkpointing
(``torch.utils.checkpoint`` in the temporal head) only saves GPU memory and is left out.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.models import MobileNetV3, ResNet
from torchvision.models.resnet import BasicBlock

from echoweave.train.models.backbones import TinyResNet, build_backbone
from echoweave.train.models.base import VideoModel
from echoweave.train.models.config import ModelConfig
from echoweave.train.models.registry import register_model
from echoweave.train.models.unrolled_lstm import UnrolledLSTM

# The reference's fixed dropouts (models_enhanced.py); the one before the fusion layer is cfg.dropout.
SPATIAL_DROPOUT = 0.3  # SpatialHead: pooled feature -> fc
POOLED_DROPOUT = 0.2  # TemporalHead: pooled per-frame map -> LSTM
LSTM_DROPOUT = 0.3  # between LSTM layers (training only)
LAST_STEP_DROPOUT = 0.3  # LSTM last step -> fc
FUSED_DROPOUT = 0.3  # classifier: ReLU -> last linear
#: Channels of the temporal stream's convolutions (the reference's proj, block 1, block 2).
TEMPORAL_CHANNELS = (32, 48, 64)


def split_resnet(module: nn.Module) -> tuple[nn.Sequential, nn.Sequential, int, int]:
    """Split a kit backbone into its stem + first residual stage and the stages after it.

    Args:
        module: A network from `build_backbone`: `TinyResNet` (``stem``, ``stages``), a torchvision
            ResNet (``conv1 bn1 relu maxpool layer1`` | ``layer2 layer3 layer4``) or MobileNetV3
            (``features[0:2]``: the stem conv and the first inverted residual | ``features[2:]``,
            as the reference splits it).

    Returns:
        ``(shared, rest, shared_channels, out_channels)``: ``rest(shared(x))`` is the backbone's
        last feature map (before its global pool), ``shared_channels`` the channels of
        ``shared``'s output and ``out_channels`` those of ``rest``'s.

    Raises:
        ValueError: a network of another kind (its stages are not known here).
    """
    if isinstance(module, TinyResNet):
        shared = nn.Sequential(module.stem, module.stages[0])
        rest = nn.Sequential(*module.stages[1:])
    elif isinstance(module, ResNet):
        shared = nn.Sequential(module.conv1, module.bn1, module.relu, module.maxpool, module.layer1)
        rest = nn.Sequential(module.layer2, module.layer3, module.layer4)
    elif isinstance(module, MobileNetV3):
        shared = nn.Sequential(*module.features[:2])
        rest = nn.Sequential(*module.features[2:])
    else:
        raise ValueError(f"stfm needs a backbone it can split into a shared stem + first residual stage and the "
                         f"remaining stages; {type(module).__name__} is not one of TinyResNet (tiny), torchvision "
                         "ResNet (resnet18, resnet50) or MobileNetV3 (mobilenet_v3_large)")
    convs = lambda m: [c for c in m.modules() if isinstance(c, nn.Conv2d)]  # noqa: E731
    return shared, rest, convs(rest)[0].in_channels, convs(rest)[-1].out_channels


def _xavier_normal_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """``nn.init.xavier_normal_`` as if ``weight`` were a ``(fan_out, fan_in)`` matrix (for a part of one)."""
    with torch.no_grad():
        weight.normal_(0.0, math.sqrt(2.0 / (fan_in + fan_out)))


def _reference_lstm(input_size: int, hidden: int, layers: int) -> nn.LSTM:
    """An ``nn.LSTM`` initialised as the reference's ``_init_weights``: input weights Xavier-normal,
    recurrent weights orthogonal, biases zero but the forget gate's 1 (in both bias vectors)."""
    lstm = nn.LSTM(input_size, hidden, layers, batch_first=True)
    for name, p in lstm.named_parameters():
        if "weight_ih" in name:
            nn.init.xavier_normal_(p)
        elif "weight_hh" in name:
            nn.init.orthogonal_(p)
        else:
            nn.init.zeros_(p)
            with torch.no_grad():
                p[hidden:2 * hidden].fill_(1.0)  # rows [i | f | g | o]: the forget gate
    return lstm


class GlobalMean(nn.Module):
    """``(N, C, h, w)`` -> ``(N, C)``: the spatial mean, one reduction with no reshape after it.

    Equal to ``AdaptiveAvgPool2d(1)`` + ``Flatten(1)``, but that pair lowers to XNNPACK as a pool
    and a reshape whose int8 input and output carry different quantization parameters, which
    XNNPACK refuses when the program loads ("Failed to create squeeze node ...
    xnn_status_invalid_parameter"); a mean straight into the next linear layer has no such reshape.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class TemporalStream(nn.Module):
    """Shared feature maps of T frames ``(B*T, C1, h, w)`` -> ``(B, stream_dim)``.

    Three stride-2 stages (a 3x3 conv, then two `BasicBlock`s with 1x1 projection shortcuts:
    ``TEMPORAL_CHANNELS``), a global average pool per frame, an LSTM over the T frames and a
    linear layer on its last step.
    """

    def __init__(self, in_channels: int, frames: int, hidden: int, layers: int, out_dim: int):
        super().__init__()
        self.frames = frames
        c0, c1, c2 = TEMPORAL_CHANNELS
        self.proj = nn.Sequential(nn.Conv2d(in_channels, c0, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(c0), nn.ReLU(inplace=True))
        self.block1 = BasicBlock(c0, c1, stride=2, downsample=nn.Sequential(
            nn.Conv2d(c0, c1, 1, stride=2, bias=False), nn.BatchNorm2d(c1)))
        self.block2 = BasicBlock(c1, c2, stride=2, downsample=nn.Sequential(
            nn.Conv2d(c1, c2, 1, stride=2, bias=False), nn.BatchNorm2d(c2)))
        self.pool = GlobalMean()
        self.pooled_dropout = nn.Dropout(POOLED_DROPOUT)
        self.lstm = UnrolledLSTM(c2, hidden, layers, LSTM_DROPOUT if layers > 1 else 0.0)
        self.lstm.load_from_nn_lstm(_reference_lstm(c2, hidden, layers))
        self.last_dropout = nn.Dropout(LAST_STEP_DROPOUT)
        self.fc = nn.Linear(hidden, out_dim)

    def forward(self, shared: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(self.proj(shared)))  # (B*T, 64, h/8, w/8)
        x = self.pooled_dropout(self.pool(x))  # (B*T, 64)
        out, _ = self.lstm(x.unflatten(0, (-1, self.frames)))  # (B, T, H)
        last = out.narrow(1, self.frames - 1, 1).flatten(1)  # (B, H): the last step, as a slice
        return self.fc(self.last_dropout(last))  # (B, stream_dim)


class STFM(VideoModel):
    """Spatio-Temporal Fusion Model: a shared stem, a spatial and a temporal stream, late fusion."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        backbone, _ = build_backbone(cfg.backbone, cfg.in_channels, cfg.width)
        self.shared, spatial, shared_channels, spatial_channels = split_resnet(backbone)
        d = cfg.stream_dim
        # nn.Identity() keeps the layers' indices (the linear stays spatial.4.*, as in older checkpoints).
        self.spatial = nn.Sequential(spatial, GlobalMean(), nn.Identity(),
                                     nn.Dropout(SPATIAL_DROPOUT), nn.Linear(spatial_channels, d))
        self.temporal = TemporalStream(shared_channels, cfg.frames, cfg.lstm_hidden, cfg.lstm_layers, d)
        self.fuse_dropout = nn.Dropout(cfg.dropout)
        # The reference's Linear(2d -> d) on the concatenation, as the sum of its two halves.
        self.fuse_spatial = nn.Linear(d, d)
        self.fuse_temporal = nn.Linear(d, d, bias=False)
        self.fused_dropout = nn.Dropout(FUSED_DROPOUT)
        self.fc = nn.Linear(d, cfg.num_classes)
        # The reference's init of its linear layers: Xavier-normal weights (of the whole 2d -> d
        # matrix for the two halves), zero biases.
        for linear, fan_in in ((self.spatial[-1], spatial_channels), (self.temporal.fc, cfg.lstm_hidden),
                               (self.fuse_spatial, 2 * d), (self.fuse_temporal, 2 * d), (self.fc, d)):
            _xavier_normal_(linear.weight, fan_in, linear.out_features)
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K)`` (not evidence: see the module docstring) of a clip ``(B, T, C, H, W)``
        of [0, 1] pixels."""
        self.check_clip(clip)
        shared = self.shared(self.normalize(clip.flatten(0, 1)))  # (B*T, C1, h, w)
        centre = shared.unflatten(0, (-1, self.frames)).narrow(1, self.frames // 2, 1).flatten(0, 1)  # (B, C1, h, w)
        spatial = self.fuse_dropout(self.spatial(centre))  # (B, d)
        temporal = self.fuse_dropout(self.temporal(shared))  # (B, d)
        fused = torch.relu(self.fuse_spatial(spatial) + self.fuse_temporal(temporal))  # (B, d)
        return self.fc(self.fused_dropout(fused))  # (B, K)


@register_model("stfm", "EV9V's STFM: shared stem, spatial stream on the centre frame + conv/LSTM temporal "
                        "stream, late fusion (window-only; train with the evidential loss reedl)")
def stfm(cfg: ModelConfig) -> STFM:
    """Spatio-Temporal Fusion Model (EV9V, bgx666/stfm)."""
    return STFM(cfg)
