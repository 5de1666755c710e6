"""The fetal-workflow family: SonoNet and its spatio-temporal models (seed
``fetal_workflow_spatiotemporal.txt``: 2-D, 2D+t and recurrent models on ultrasound video).

Every model here is built on the SonoNet base (`sononet.py`; the builders set ``backbone`` to
``sononet`` whatever the config says, and ``width`` picks SonoNet-{width}: 64 is the paper's,
8 a tiny CPU variant). ``feature_dim`` D defaults to ``2 * width`` (SonoNet-64's adaptation layer
of 128 channels)::

    frame -> SonoNet blocks -> maps (F = 8w, h = H/16) -> fc0: 1x1 conv F -> D + ReLU (SonoNet's
             adaptation layer) -> 2-D feature (D, h, w) -> global average pool -> 1-D feature (D)

``fc0`` is a 1x1 convolution here (the per-frame family's name for the layer after the backbone,
so `init_from_image_model` copies it with the backbone and ``freeze_backbone`` freezes both).

Registered models (T frames per window; every temporal head ends in `DenseHead`: dropout ->
Linear -> 128 -> ReLU -> dropout -> Linear -> K, the paper's dense layers):

- ``sononet`` (per-frame, streams): the SonoNet image classifier: 1-D feature -> dropout -> fc1
  (SonoNet's last 1x1 adaptation to the classes, moved after the pool: it is linear). Stage 1 of
  the family (``forward_image``); a window is mean voting, as ``image``.
- Feature-based (per-frame family, stream; the paper trains them on fixed features: stage 2 with
  ``init_from`` the ``sononet`` run, ``freeze_backbone`` and, on the CPU, ``cache_features``):
  ``feat1d_lstm`` (Feat1D-LSTM-RNN: `UnrolledLSTM` over the T 1-D features, last step),
  ``feat2d_cnn3d`` (Feat2D-2DtCNN: two 3x3x3 convolutions over the T 2-D features, global average
  pool), ``feat2d_convlstm`` (Feat2D-CLSTM-RNN: `UnrolledConvLSTM` over the T 2-D features, last
  hidden map pooled). Their per-frame feature (``embed_frame``) is the 1-D feature (D) or the 2-D
  one flattened (D * h * w); ``classify_window`` is the temporal unit and the dense head.
- End-to-end recurrent convolutional networks after the 2-D base layers (window-only, trained
  whole; ``init_from`` a ``sononet`` run copies the SonoNet blocks): each has its **own**
  adaptation layer (1x1 conv + BN + ReLU on the base's maps: the paper's adaptation units linked
  to one spatio-temporal unit) before its unit: ``rcn_cnn3d`` (Temp-Sono-2DtCNN), ``rcn_lstm``
  (Temp-Sono-LSTM-RCN: maps pooled per frame, LSTM), ``rcn_convlstm`` (Temp-Sono-CLSTM-RCN).
- ``cnn2dt`` (Sono-2DtCNN, window-only; the paper's best): SonoNet with its first
  ``INFLATED_BLOCKS`` blocks inflated to 3x3x3 (`inflate_2d_to_3d`: replicate time padding, no
  temporal pooling) and the later blocks applied per frame (time kernel 1), the adaptation layer
  per position, a global average pool over (T, h, w), the dense head. ``init_from`` a ``sononet``
  run inflates its blocks and adaptation layer: a clip constant in time then gives the 2-D
  model's 1-D feature exactly.

The LSTMs and the ConvLSTM are unrolled into linears / 2-D convolutions (no recurrent operator in
an exported graph); the 3-D convolutions are ``Conv3d`` with explicit padding (`InflatedConv3d`,
the form LiteRT converts), which ExecuTorch cannot run (declared in `export_limits`).
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from echoweave.train.models.base import EchoModel, FeatureStandardizer, VideoModel
from echoweave.train.models.config import ModelConfig
from echoweave.train.models.convlstm import UnrolledConvLSTM
from echoweave.train.models.image import ImageClassifier
from echoweave.train.models.inflated import GlobalAvgPool3d, InflatedConv3d, inflate_2d_to_3d, inflate_state_dict
from echoweave.train.models.registry import register_model
from echoweave.train.models.sononet import SonoNet, sononet_map_size
from echoweave.train.models.unrolled_lstm import UnrolledLSTM

#: Hidden units of the dense layer before the classes (the paper's heads use 512, 256 or 128).
DENSE_DIM = 128
#: SonoNet blocks that ``cnn2dt`` inflates to 3x3x3 (the rest keep a time kernel of 1).
INFLATED_BLOCKS = 3
#: 3x3x3 convolution + BN + ReLU layers of the 2D+t unit (``feat2d_cnn3d``, ``rcn_cnn3d``).
CNN3D_LAYERS = 2

# Measured with executorch 1.5.1 (tiny variants, XNNPACK partitioner): feat2d_cnn3d's classify_window
# and cnn2dt's forward lower and serialize, and execute() fails with error 0x12, as i3d's does.
# ONNX Runtime (fp32, int8) and LiteRT (fp32, int8) run them with parity met (tests/test_fetal_models.py).
_NO_EXECUTORCH_3D = ("3-D convolution: XNNPACK has no 3-D kernels and ExecuTorch's portable conv rejects "
                     "conv3d (execute: 0x12 InvalidArgument); use the ONNX Runtime or LiteRT artifact")


def sononet_config(cfg: ModelConfig) -> ModelConfig:
    """The config with the SonoNet base (every model of the family is built on it)."""
    return cfg if cfg.backbone == "sononet" else cfg.replace(backbone="sononet")


class DenseHead(nn.Sequential):
    """dropout -> Linear(in, 128) -> ReLU -> dropout -> Linear(128, K): ``(B, in) -> (B, K)``."""

    def __init__(self, in_dim: int, num_classes: int, dropout: float):
        super().__init__(nn.Dropout(dropout), nn.Linear(in_dim, DENSE_DIM), nn.ReLU(inplace=True),
                         nn.Dropout(dropout), nn.Linear(DENSE_DIM, num_classes))


class CNN3DUnit(nn.Module):
    """2D+t convolutions over a window of maps: ``(B, C, T, h, w)`` -> ``(B, channels)``.

    ``CNN3D_LAYERS`` 3x3x3 convolutions (+ BN + ReLU; time padded by replicating the edge frames,
    space by zeros, written as `InflatedConv3d`), then a global average pool over (T, h, w)."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        layers: list[nn.Module] = []
        for k in range(CNN3D_LAYERS):
            layers += [InflatedConv3d(in_channels if k == 0 else channels, channels, (3, 3, 3), bias=False,
                                      time_pad=1, space_pad=(1, 1)),
                       nn.BatchNorm3d(channels), nn.ReLU(inplace=True)]
        self.layers = nn.Sequential(*layers)
        self.pool = GlobalAvgPool3d()
        self.out_dim = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.layers(x)).flatten(1)  # (B, channels)


class ConvLSTMUnit(nn.Module):
    """ConvLSTM over a window of maps ``(B, T, C, h, w)`` -> last hidden map pooled ``(B, channels)``."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.cell = UnrolledConvLSTM(in_channels, channels, 3)
        self.out_dim = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.cell(x)  # (B, channels, h, w)
        return h.mean(dim=(-2, -1), keepdim=True).flatten(1)  # (B, channels): the 4-d pool XNNPACK lowers


class LSTMUnit(nn.Module):
    """LSTM over a window of vectors ``(B, T, D)`` -> last step ``(B, hidden)``."""

    def __init__(self, in_dim: int, hidden: int, layers: int):
        super().__init__()
        self.lstm = UnrolledLSTM(in_dim, hidden, layers)
        self.out_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # (B, T, H)
        return out[:, -1:].flatten(1)  # (B, H): the last step as a slice (a select does not delegate)


def spatiotemporal_unit(kind: str, channels: int, cfg: ModelConfig) -> nn.Module:
    """The unit of a temporal model: ``lstm`` on ``channels``-d vectors, ``cnn3d`` or ``convlstm``
    on maps of ``channels`` channels (``spatiotemporal_channels`` out)."""
    if kind == "lstm":
        return LSTMUnit(channels, cfg.lstm_hidden, cfg.lstm_layers)
    if kind == "cnn3d":
        return CNN3DUnit(channels, cfg.spatiotemporal_channels)
    return ConvLSTMUnit(channels, cfg.spatiotemporal_channels)


# ---- the per-frame family on SonoNet -----------------------------------------------------------
class SonoNetFrames(EchoModel):
    """`EchoModel` on SonoNet whose per-frame feature passes SonoNet's adaptation layer ``fc0``
    (1x1 conv + ReLU) before pooling; ``maps`` models keep the 2-D feature (flattened)."""

    #: True: ``embed_frame`` returns the 2-D feature ``(D, h, w)`` flattened, not its spatial mean.
    maps = False

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.adapt_dim = cfg.resolved_feature_dim
        self.map_size = sononet_map_size(cfg.input_size)
        if self.map_size < 1:
            raise ValueError(f"{cfg.name}: SonoNet needs input_size >= 16 (4 max pools), got {cfg.input_size}")
        self.fc0 = nn.Conv2d(self.backbone_dim, self.adapt_dim, 1)  # SonoNet's adaptation layer
        if self.maps:
            self.feature_dim = self.adapt_dim * self.map_size ** 2
            if self.contrast_norm is not None:
                self.contrast_norm = FeatureStandardizer(self.feature_dim)

    def feature_maps(self, frame: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` pixels in [0, 1] -> the 2-D feature ``(B, D, h, w)``."""
        return self.act0(self.fc0(self.backbone.forward_maps(self.normalize(frame))))

    def embed_frame(self, frame: torch.Tensor) -> torch.Tensor:
        x = self.feature_maps(frame)  # (B, D, h, w)
        if self.maps:
            return x.flatten(1)  # (B, D*h*w)
        return self.backbone.pool(x)  # (B, D): SonoNet's global average pool (`GlobalAvgPool`)

    def unflatten_maps(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, T, D*h*w)`` window features -> ``(B, T, D, h, w)`` (configured sizes, no shape reads)."""
        return features.unflatten(2, (self.adapt_dim, self.map_size, self.map_size))


class SonoNetClassifier(SonoNetFrames, ImageClassifier):
    """SonoNet image classifier (stage 1 of the family); window = mean voting (`ImageClassifier`)."""

    # ExecuTorch int8 exports: SonoNet's pool is `GlobalAvgPool` (sononet.py), whose int8 graph
    # XNNPACK loads; with AdaptiveAvgPool2d(1) the forward failed to load ("XNNCompiler: Failed to
    # create squeeze node 53 ... xnn_status_invalid_parameter", executorch 1.5.1), as did
    # feat1d_lstm's, which shares the 1-D feature.


class FeatureTemporalModel(SonoNetFrames):
    """A temporal unit + dense head over the window's per-frame SonoNet features (streams)."""

    def __init__(self, cfg: ModelConfig, unit: str):
        self.maps = unit != "lstm"
        super().__init__(cfg)
        self.unit_kind = unit
        self.unit = spatiotemporal_unit(unit, self.adapt_dim, cfg)
        self.head = DenseHead(self.unit.out_dim, cfg.num_classes, cfg.dropout)

    def export_limits(self) -> dict[tuple[str, str], str]:
        return {("executorch", "*"): _NO_EXECUTORCH_3D} if self.unit_kind == "cnn3d" else {}

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        if self.unit_kind == "lstm":
            return self.head(self.unit(features))  # (B, T, D) -> (B, K)
        maps = self.unflatten_maps(features)  # (B, T, D, h, w)
        if self.unit_kind == "cnn3d":
            maps = maps.transpose(1, 2)  # (B, D, T, h, w)
        return self.head(self.unit(maps))  # (B, K)


# ---- end-to-end models (window-only) -----------------------------------------------------------
def _copy_image_state(model: nn.Module, state: Mapping[str, torch.Tensor], prefixes: tuple[str, ...]) -> list[str]:
    """Copy (inflating 2-D kernels where the model's are 3-D) the ``prefixes`` tensors of a
    ``sononet`` image model's state dict; the copied keys, sorted."""
    own = model.state_dict()
    wanted = sorted(k for k in own if k.startswith(prefixes))
    missing = [k for k in wanted if k not in state]
    if missing:
        raise ValueError(f"{model.cfg.name}: the image state dict lacks {len(missing)} tensors (first {missing[:3]}); "
                         f"start from a 'sononet' run of the same width ({model.cfg.width})")
    model.load_state_dict(inflate_state_dict({k: state[k] for k in wanted}, {k: own[k] for k in wanted}),
                          strict=False)
    return wanted


class SonoNetRCN(VideoModel):
    """End-to-end: SonoNet blocks per frame -> own adaptation (1x1 conv + BN + ReLU) -> temporal
    unit -> dense head (window-only)."""

    def __init__(self, cfg: ModelConfig, unit: str):
        super().__init__(cfg)
        self.backbone = SonoNet(cfg.in_channels, cfg.width)
        self.adapt_dim = cfg.resolved_feature_dim
        self.adapt = nn.Sequential(nn.Conv2d(self.backbone.feature_dim, self.adapt_dim, 1, bias=False),
                                   nn.BatchNorm2d(self.adapt_dim), nn.ReLU(inplace=True))
        self.unit_kind = unit
        self.unit = spatiotemporal_unit(unit, self.adapt_dim, cfg)
        self.head = DenseHead(self.unit.out_dim, cfg.num_classes, cfg.dropout)

    def init_from_image_state(self, state: Mapping[str, torch.Tensor]) -> list[str]:
        """Stage 2 from a ``sononet`` run: its SonoNet blocks (the adaptation stays this model's own)."""
        return _copy_image_state(self, state, ("backbone.",))

    def export_limits(self) -> dict[tuple[str, str], str]:
        return {("executorch", "*"): _NO_EXECUTORCH_3D} if self.unit_kind == "cnn3d" else {}

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K)`` of a clip ``(B, T, C, H, W)`` of [0, 1] pixels."""
        self.check_clip(clip)
        maps = self.adapt(self.backbone.forward_maps(self.normalize(clip.flatten(0, 1))))  # (B*T, D, h, w)
        maps = maps.unflatten(0, (-1, self.frames))  # (B, T, D, h, w)
        if self.unit_kind == "lstm":
            x = self.unit(maps.mean(dim=(-2, -1)))  # (B, T, D) pooled per frame -> (B, H)
        elif self.unit_kind == "cnn3d":
            x = self.unit(maps.transpose(1, 2))  # (B, D, T, h, w) -> (B, C)
        else:
            x = self.unit(maps)  # (B, C)
        return self.head(x)  # (B, K)


class SonoCNN2DT(VideoModel):
    """Sono-2DtCNN: SonoNet with its first blocks inflated to 2D+t, pooled over (T, h, w) (window-only)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        net = SonoNet(cfg.in_channels, cfg.width)
        net.blocks = nn.Sequential(*(inflate_2d_to_3d(block, 3 if i < INFLATED_BLOCKS else 1)
                                     for i, block in enumerate(net.blocks)))
        self.backbone = net  # keys backbone.blocks.* as the 2-D SonoNet's (init_from inflates them)
        self.adapt_dim = cfg.resolved_feature_dim
        self.fc0 = nn.Conv3d(net.feature_dim, self.adapt_dim, 1)  # the adaptation layer, per position
        self.act0 = nn.ReLU()
        self.pool = GlobalAvgPool3d()
        self.head = DenseHead(self.adapt_dim, cfg.num_classes, cfg.dropout)

    def init_from_image_state(self, state: Mapping[str, torch.Tensor]) -> list[str]:
        """Stage 2 from a ``sononet`` run: its blocks and adaptation layer, inflated (head fresh)."""
        return _copy_image_state(self, state, ("backbone.", "fc0."))

    def export_limits(self) -> dict[tuple[str, str], str]:
        return {("executorch", "*"): _NO_EXECUTORCH_3D}

    def features(self, clip: torch.Tensor) -> torch.Tensor:
        """The pooled 2D+t feature ``(B, D)`` of a clip ``(B, T, C, H, W)``."""
        self.check_clip(clip)
        x = self.backbone.forward_maps(self.normalize(clip).transpose(1, 2))  # (B, 8w, T, h, w)
        return self.pool(self.act0(self.fc0(x))).flatten(1)  # (B, D)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K)`` of a clip ``(B, T, C, H, W)`` of [0, 1] pixels."""
        return self.head(self.features(clip))


# ---- registry ----------------------------------------------------------------------------------
@register_model("sononet", "SonoNet image classifier (VGG-like 3x3 conv+BN blocks, 1x1 adaptation, GAP; "
                           "from scratch, width = SonoNet-{width}); window = mean voting")
def sononet(cfg: ModelConfig) -> SonoNetClassifier:
    """SonoNet frame classifier (stage 1 of the fetal-workflow family)."""
    return SonoNetClassifier(sononet_config(cfg))


@register_model("feat1d_lstm", "Feat1D-LSTM: LSTM over per-frame SonoNet 1-D features (train on a frozen "
                               "sononet run; streams)")
def feat1d_lstm(cfg: ModelConfig) -> FeatureTemporalModel:
    """LSTM over frozen SonoNet frame vectors."""
    return FeatureTemporalModel(sononet_config(cfg), "lstm")


@register_model("feat2d_cnn3d", "Feat2D-2D+t CNN: 3x3x3 convs over per-frame SonoNet 2-D feature maps "
                                "(train on a frozen sononet run; streams)")
def feat2d_cnn3d(cfg: ModelConfig) -> FeatureTemporalModel:
    """2D+t CNN over frozen SonoNet frame maps."""
    return FeatureTemporalModel(sononet_config(cfg), "cnn3d")


@register_model("feat2d_convlstm", "Feat2D-ConvLSTM: unrolled ConvLSTM over per-frame SonoNet 2-D feature maps "
                                   "(train on a frozen sononet run; streams)")
def feat2d_convlstm(cfg: ModelConfig) -> FeatureTemporalModel:
    """ConvLSTM over frozen SonoNet frame maps."""
    return FeatureTemporalModel(sononet_config(cfg), "convlstm")


@register_model("rcn_cnn3d", "Temp-Sono-2D+t CNN: SonoNet blocks per frame -> own adaptation -> 3x3x3 convs, "
                             "end to end (window-only)")
def rcn_cnn3d(cfg: ModelConfig) -> SonoNetRCN:
    """Hybrid 2D+t CNN after the SonoNet base, end to end."""
    return SonoNetRCN(sononet_config(cfg), "cnn3d")


@register_model("rcn_lstm", "Temp-Sono-LSTM RCN: SonoNet blocks per frame -> own adaptation -> pooled -> LSTM, "
                            "end to end (window-only)")
def rcn_lstm(cfg: ModelConfig) -> SonoNetRCN:
    """LSTM recurrent convolutional network on SonoNet, end to end."""
    return SonoNetRCN(sononet_config(cfg), "lstm")


@register_model("rcn_convlstm", "Temp-Sono-ConvLSTM RCN: SonoNet blocks per frame -> own adaptation -> ConvLSTM, "
                                "end to end (window-only)")
def rcn_convlstm(cfg: ModelConfig) -> SonoNetRCN:
    """ConvLSTM recurrent convolutional network on SonoNet, end to end."""
    return SonoNetRCN(sononet_config(cfg), "convlstm")


@register_model("cnn2dt", "Sono-2D+t CNN: SonoNet with its first 3 blocks inflated to 3x3x3, pooled over "
                          "time and space (window-only; the seed's best)")
def cnn2dt(cfg: ModelConfig) -> SonoCNN2DT:
    """Pure 2D+t CNN: a temporally inflated SonoNet."""
    return SonoCNN2DT(sononet_config(cfg))
