"""Window-only video models: no per-frame streaming split, or a second (derived) input.

`c3d`: a C3D-style 3-D CNN. Four blocks of 3x3x3 convolution + batch norm + ReLU (channels
w, 2w, 4w, 8w for ``width`` w), the first pooling space only and the others space and time (as
C3D keeps early temporal resolution), then a **3-D global average pool** instead of C3D's
flattening layer, dropout and one linear layer. It sees the whole window at once, so it declares
only ``forward``; the edge streams it by recomputing the window.

`diff_two_stream`: a two-stream model whose second input is derived on the device. The spatial
stream embeds every frame with the configured 2-D backbone and averages over time (a
time-distributed CNN); the temporal stream is the same kind of backbone on the T - 1 stacked
frame differences (``derive: frame_difference``, `echoweave.edge.derived_inputs`); the two
pooled vectors are concatenated before dropout and the output layer. It is the shape of Howard's
two-stream network with the cheapest motion signal in place of optical flow.

Both go through train / export / edge / bench like the per-frame family
(docs/ARCHITECTURE.md "How to add a model").
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from echoweave.train.models.backbones import build_backbone
from echoweave.train.models.base import VideoModel
from echoweave.train.models.config import ModelConfig
from echoweave.train.models.registry import register_model


def _block3d(cin: int, cout: int, pool: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True),
                         nn.MaxPool3d(pool, pool))


class C3D(VideoModel):
    """C3D-style 3-D CNN with a 3-D global average pool (window-only)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        w = cfg.width
        widths = (w, 2 * w, 4 * w, 8 * w)
        # Pool time only while at least 2 frames remain (T = 4 -> 2 -> 1).
        blocks, cin, t = [], cfg.in_channels, cfg.frames
        for i, cout in enumerate(widths):
            pool_t = 2 if i > 0 and t >= 2 else 1
            t //= pool_t
            blocks.append(_block3d(cin, cout, (pool_t, 2, 2)))
            cin = cout
        self.features = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cin, cfg.num_classes)

    def export_limits(self) -> dict[tuple[str, str], str]:
        return {
            # Measured with executorch 1.5.1: a lone Conv3d lowers but execute() fails (0x12
            # InvalidArgument: the portable convolution is 1-D/2-D only); a lone MaxPool3d fails to
            # load (0x14 OperatorMissing). Nothing of a 3-D CNN would run, so nothing is exported.
            ("executorch", "*"): "3-D convolution/pooling: XNNPACK has no 3-D kernels, and ExecuTorch's portable "
                                 "kernels reject conv3d (execute: InvalidArgument) and lack max_pool3d (load: "
                                 "OperatorMissing); use the ONNX Runtime or LiteRT artifact",
            ("litert", "int8"): "ai-edge-quantizer cannot calibrate the MAXIMUM chain LiteRT lowers 3-D max pooling into "
                                "('MAXIMUM not found in tensor_name_to_qsv'); the fp32 .tflite runs",
        }

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K)`` of a clip ``(B, T, C, H, W)`` of [0, 1] pixels."""
        self.check_clip(clip)
        x = self.normalize(clip).transpose(1, 2)  # (B, C, T, H, W)
        x = self.features(x)  # (B, 8w, T', H', W')
        x = x.mean(dim=(2, 3, 4))  # (B, 8w): the 3-D global average pool
        return self.fc(self.dropout(x))  # (B, K)


class DiffTwoStream(VideoModel):
    """Spatial stream (per-frame CNN, mean over T) + frame-difference stream, fused late."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        if cfg.frames < 2:
            raise ValueError("diff_two_stream needs frames >= 2 (its motion stream differences neighbouring frames)")
        self.spatial, spatial_dim = build_backbone(cfg.backbone, cfg.in_channels, cfg.width)
        self.temporal, temporal_dim = build_backbone(cfg.backbone, (cfg.frames - 1) * cfg.in_channels, cfg.width)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(spatial_dim + temporal_dim, cfg.num_classes)

    def derived_inputs(self) -> list[dict[str, Any]]:
        return [{"name": "motion", "layout": "NTCHW", "derive": {"kind": "frame_difference", "from": "clip"}}]

    def forward(self, clip: torch.Tensor, motion: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, K)``.

        Args:
            clip: ``(B, T, C, H, W)`` pixels in [0, 1].
            motion: ``(B, T - 1, C, H, W)`` frame differences; computed from ``clip`` when None
                (training), passed in by the edge (the exported graph takes both inputs).
        """
        self.check_clip(clip)
        if motion is None:
            (motion,) = self.derive(clip)
        spatial = self.spatial(self.normalize(clip.flatten(0, 1)))  # (B*T, F)
        spatial = spatial.unflatten(0, (-1, self.frames)).mean(dim=1)  # (B, F)
        # Differences are centred already; scale them by the pixel std like the frames.
        temporal = self.temporal((motion / self.pixel_std).flatten(1, 2))  # (B, G) from (B, (T-1)*C, H, W)
        return self.fc(self.dropout(torch.cat([spatial, temporal], dim=1)))  # (B, K)


@register_model("c3d", "C3D-style 3-D CNN, 3-D global average pool (window-only: no per-frame streaming split)")
def c3d(cfg: ModelConfig) -> C3D:
    """C3D-style 3-D CNN."""
    return C3D(cfg)


@register_model("diff_two_stream", "per-frame CNN + frame-difference stream (a second input derived on the device)")
def diff_two_stream(cfg: ModelConfig) -> DiffTwoStream:
    """Two-stream model with a derived frame-difference input."""
    return DiffTwoStream(cfg)
