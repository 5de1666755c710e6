"""Howard et al.'s video models: the time-distributed CNN and the two-stream network.

(Howard, Stowell et al., "Improving ultrasound video classification: an evaluation of novel deep
learning methods in echocardiography", the seed ``howard_two_stream_echo_views.txt``.)

`tdcnn` (per-frame family, streams like TFW): the per-frame CNN feature (backbone global
average pool -> fc0 -> ReLU, `EchoModel.embed_frame`) of every frame of the window, then three
1-D depthwise-separable convolutions over time (``tdcnn_channels`` kernels of size 3, ReLU)
separated by two 1-D max poolings of size 2, a 1-D global average pool, dropout and a linear
layer (`TemporalConvHead`)::

    features (B, T, D) -> sepconv -> [pool] -> sepconv -> [pool] -> sepconv -> GAP -> dropout -> K

Convolutions pad by 1 ("same"), so only the poolings shorten the sequence; a pooling is skipped
when the sequence it gets is shorter than 2 frames (it would leave less than one), see
`pool_plan`: T = 20 (the paper) pools 20 -> 10 -> 5, T = 4 pools 4 -> 2 -> 1, T = 2 pools once.

`two_stream` (window-only, a second input derived on the device): the spatial stream is the
TD-CNN head over the per-frame features of the first ``spatial_frames`` frames of the window;
the temporal stream is a 2-D CNN (``build_backbone(backbone, 2 * flow_pairs)``) applied
time-distributed to ``flow_chunks`` chunks of ``flow_pairs`` consecutive optical-flow frames (x
and y stacked: ``2 * flow_pairs`` channels), then averaged over chunks (a 1-D global average
pool); the two pooled vectors are concatenated before dropout and the output layer (written as
the sum of the output layer's two halves, the same function, which XNNPACK int8 runs). The flow is
OpenCV's Farneback between neighbouring frames of the preprocessed window
(``derive: farneback_flow``, `echoweave.edge.derived_inputs`): the edge computes it before
every ``forward``, training through `VideoModel.derive` (the same numpy/OpenCV function), so a
window's flow is the same number in both. Training computes it per window on the fly (no cache).

The 1-D operators are written as 2-D ones on a ``(B, C, 1, T)`` tensor (depthwise ``Conv2d``
with a ``(1, 3)`` kernel, ``MaxPool2d((1, 2))``, mean over the last two dims with keepdim):
measured with executorch 1.5.1, the ``Conv1d``/``MaxPool1d``/3-d mean form leaves
``unsqueeze``/``max_pool2d_with_indices``/``squeeze``/``mean`` outside the XNNPACK delegate,
this form delegates every node.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from echoweave.train.models.backbones import build_backbone
from echoweave.train.models.base import EchoModel, VideoModel
from echoweave.train.models.config import ModelConfig
from echoweave.train.models.registry import register_model

#: Depthwise-separable convolutions of the TD-CNN head, with a pooling slot between each two.
TDCNN_CONVS = 3


def pool_plan(frames: int, slots: int = TDCNN_CONVS - 1) -> tuple[bool, ...]:
    """Which of the head's max poolings (size 2) run for a window of ``frames`` features.

    A pooling runs when the sequence reaching it has at least 2 steps (so at least one is left
    after it) and is skipped otherwise.

    >>> pool_plan(20), pool_plan(4), pool_plan(2), pool_plan(1)
    ((True, True), (True, True), (True, False), (False, False))
    """
    plan, t = [], int(frames)
    for _ in range(slots):
        plan.append(t >= 2)
        t = t // 2 if t >= 2 else t
    return tuple(plan)


def pooled_length(frames: int) -> int:
    """Time steps left after the head's poolings (`pool_plan`)."""
    t = int(frames)
    for pool in pool_plan(frames):
        t = t // 2 if pool else t
    return t


class SeparableConv1d(nn.Sequential):
    """Depthwise (kernel 3 over time, "same" padding) then pointwise convolution, then ReLU, on
    ``(B, C, 1, T)`` (Keras' ``SeparableConv1D``: no bias on the depthwise part)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cin, (1, 3), padding=(0, 1), groups=cin, bias=False),
                         nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))


class TemporalConvHead(nn.Module):
    """The TD-CNN's temporal part: ``(B, T, D)`` per-frame features -> ``(B, channels)``.

    Three `SeparableConv1d` separated by max pooling of size 2 (`pool_plan`), then the 1-D
    global average pool over the remaining steps.
    """

    def __init__(self, in_dim: int, channels: int, frames: int):
        super().__init__()
        self.in_dim, self.frames, self.out_dim = in_dim, frames, channels
        self.plan = pool_plan(frames)
        layers: list[nn.Module] = []
        cin = in_dim
        for i in range(TDCNN_CONVS):
            layers.append(SeparableConv1d(cin, channels))
            cin = channels
            if i < len(self.plan) and self.plan[i]:
                layers.append(nn.MaxPool2d((1, 2)))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # (B, T, D) -> (B, D, 1, T) with the configured sizes (no shape arithmetic in the graph).
        x = features.transpose(1, 2).reshape(-1, self.in_dim, 1, self.frames)
        x = self.layers(x)  # (B, channels, 1, T')
        return x.mean(dim=(-2, -1), keepdim=True).flatten(1)  # (B, channels): 1-D global average pool


class TDCNN(EchoModel):
    """Time-distributed 2-D CNN + 1-D depthwise-separable convolutions over time (streams)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.temporal = TemporalConvHead(self.feature_dim, cfg.tdcnn_channels, cfg.frames)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cfg.tdcnn_channels, cfg.num_classes)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` per-frame features -> ``(B, K)`` logits."""
        return self.fc(self.dropout(self.temporal(features)))


def flow_layout(cfg: ModelConfig) -> tuple[int, int]:
    """``(flow_pairs, flow_chunks)`` of a two-stream config, defaults resolved and checked.

    Raises:
        ValueError: the window's ``frames - 1`` flow frames cannot hold the chunks.
    """
    chunks = 1 if cfg.flow_chunks is None else int(cfg.flow_chunks)
    pairs = (cfg.frames - 1) // chunks if cfg.flow_pairs is None else int(cfg.flow_pairs)
    if pairs < 1 or pairs * chunks > cfg.frames - 1:
        need = max(pairs, 1) * chunks
        raise ValueError(f"two_stream: a window of frames={cfg.frames} holds {cfg.frames - 1} optical-flow frames, "
                         f"but flow_chunks={chunks} x flow_pairs={max(pairs, 1)} needs {need}: set model.frames "
                         f">= {need + 1} or lower flow_pairs/flow_chunks")
    return pairs, chunks


def flow_spec(cfg: ModelConfig) -> dict[str, Any]:
    """The ``derive`` spec of the flow input: OpenCV's example Farneback parameters, and a bound
    of 1/16 of the frame side (pixels) mapped to +-1 (on the phantom 99.9% of |flow| stays
    under 1/30 of the side, so the bound rarely clips)."""
    return {"kind": "farneback_flow", "from": "clip", "pyr_scale": 0.5, "levels": 3, "winsize": 15,
            "iterations": 3, "poly_n": 5, "poly_sigma": 1.2, "bound": cfg.input_size / 16.0}


class TwoStream(VideoModel):
    """Spatial TD-CNN stream + time-distributed optical-flow CNN stream, fused late (window-only)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.flow_pairs, self.flow_chunks = flow_layout(cfg)
        self.spatial_frames = cfg.frames if cfg.spatial_frames is None else int(cfg.spatial_frames)
        self.feature_dim = cfg.resolved_feature_dim
        # Spatial stream: named like the per-frame family (backbone, fc0) so an image model's
        # state dict fits it (`init_from_image_state`).
        self.backbone, backbone_dim = build_backbone(cfg.backbone, cfg.in_channels, cfg.width)
        self.fc0 = nn.Linear(backbone_dim, self.feature_dim)
        self.act0 = nn.ReLU()
        self.spatial_head = TemporalConvHead(self.feature_dim, cfg.tdcnn_channels, self.spatial_frames)
        # Temporal stream: x and y of flow_pairs flow frames stacked as channels.
        self.flow_cnn, flow_dim = build_backbone(cfg.backbone, 2 * self.flow_pairs, cfg.width)
        self.flow_dim = flow_dim
        self.dropout = nn.Dropout(cfg.dropout)
        # The output layer over [spatial, temporal] written as the sum of its two halves (the
        # same function; dropout is elementwise): with the concatenation, the int8 ExecuTorch
        # program lowered but did not load (executorch 1.5.1: "XNNCompiler: Failed to create cat2
        # node ... with code: xnn_status_invalid_parameter").
        self.fc_spatial = nn.Linear(cfg.tdcnn_channels, cfg.num_classes)
        self.fc_temporal = nn.Linear(flow_dim, cfg.num_classes, bias=False)

    def derived_inputs(self) -> list[dict[str, Any]]:
        return [{"name": "flow", "layout": "NTCHW", "derive": flow_spec(self.cfg)}]

    def init_from_image_state(self, state: dict[str, torch.Tensor]) -> list[str]:
        """Copy an image model's ``backbone.*``/``fc0.*`` into the spatial stream; the copied keys."""
        own = self.state_dict()
        keys = sorted(k for k in own if k.startswith(("backbone.", "fc0.")))
        bad = [k for k in keys if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
        if bad:
            raise ValueError(f"two_stream: the image model's state dict does not fit the spatial stream "
                             f"({len(bad)} backbone/fc0 tensors missing or of another shape, first {bad[0]}); "
                             f"was it built with backbone {self.cfg.backbone!r}?")
        self.load_state_dict({k: state[k] for k in keys}, strict=False)
        return keys

    def forward(self, clip: torch.Tensor, flow: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, K)``.

        Args:
            clip: ``(B, T, C, H, W)`` pixels in [0, 1].
            flow: ``(B, T - 1, 2, H, W)`` Farneback flow of neighbouring frames (x, y, scaled to
                [-1, 1]); computed from ``clip`` when None (training), passed in by the edge (the
                exported graph takes both inputs).
        """
        self.check_clip(clip)
        if flow is None:
            (flow,) = self.derive(clip)
        frames = clip if self.spatial_frames == self.frames else clip[:, : self.spatial_frames]
        feats = self.act0(self.fc0(self.backbone(self.normalize(frames.flatten(0, 1)))))  # (B*Ts, D)
        spatial = self.spatial_head(feats.unflatten(0, (-1, self.spatial_frames)))  # (B, channels)
        used = self.flow_pairs * self.flow_chunks
        if used != self.frames - 1:
            flow = flow[:, :used]  # the first chunks of the window, as the paper's first frames
        s = self.cfg.input_size
        chunks = flow.reshape(-1, 2 * self.flow_pairs, s, s)  # (B*chunks, 2*pairs, S, S): x0 y0 x1 y1 ...
        temporal = self.flow_cnn(chunks)  # (B*chunks, G)
        # Mean over chunks as a 4-d global average pool (the form XNNPACK lowers).
        temporal = temporal.reshape(-1, self.flow_chunks, self.flow_dim).transpose(1, 2)
        temporal = temporal.reshape(-1, self.flow_dim, self.flow_chunks, 1).mean(dim=(-2, -1), keepdim=True).flatten(1)
        # == Linear(cat([spatial, temporal])) with weight [fc_spatial | fc_temporal]
        return self.fc_spatial(self.dropout(spatial)) + self.fc_temporal(self.dropout(temporal))  # (B, K)


@register_model("tdcnn", "Howard's time-distributed CNN: per-frame CNN features -> 3 depthwise-separable "
                         "1-D convs over time (streams like TFW)")
def tdcnn(cfg: ModelConfig) -> TDCNN:
    """Time-distributed CNN (Howard et al.)."""
    return TDCNN(cfg)


@register_model("two_stream", "Howard's two-stream: TD-CNN spatial stream + CNN on stacked Farneback optical "
                              "flow chunks (window-only; flow derived on the device)")
def two_stream(cfg: ModelConfig) -> TwoStream:
    """Two-stream network with an optical-flow input (Howard et al.)."""
    return TwoStream(cfg)
