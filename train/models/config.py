"""`ModelConfig`: the one dataclass every registered model is built from.

The config travels with the weights (checkpoint `config.json` -> export manifest), so nothing
downstream types frame counts, feature sizes or mean/std a second time.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# The paper backbones all end in fc0 Linear -> 2048 (docs/ARCHITECTURE.md "The model contract"); the tiny
# backbone for tests and the CPU demo uses a narrower feature so its head stays small too.
PAPER_FEATURE_DIM = 2048
TINY_FEATURE_DIM = 256
#: Window-head inputs: the features as they are, or minus their window mean (feature contrast).
CONTRASTS = ("none", "window_mean")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model of the registry.

    Attributes:
        name: Registered model name (`image`, `gru`, `tfw`, `attention`; see `list_models()`).
        backbone: Per-frame CNN (`resnet50`, `resnet18`, `mobilenet_v3_large`, `mobilenet_v3_small`, `tiny`, `sononet`).
        num_classes: Number of view classes K (12 for NED-12).
        frames: Frames per window T (4 in the paper; TFW weaves T chunks of D/T).
        input_size: Square frame side in pixels fed to the network (224 in the paper).
        in_channels: Image channels (1 = grayscale, the paper's choice).
        feature_dim: Per-frame feature size D after fc0; None means 2048 (paper backbones),
            256 (tiny) or ``2 * width`` (sononet: SonoNet's adaptation layer, 128 for SonoNet-64).
        dropout: Dropout before the classifier layer (0.6 in the paper, all models).
        gru_hidden: GRU hidden size (256 in the paper).
        gru_layers: Stacked GRU layers (3 in the paper).
        gru_dropout: Dropout between GRU layers, active only in training (0.5 in the paper).
        attention_heads: Heads of the attention baseline (4 in the paper).
        attention_fc_dim: Width of the attention baseline's hidden FC (2048 in the paper).
        width: Base channel width of the `tiny` and `sononet` backbones (ignored by the others;
            64 is SonoNet-64, the fetal-workflow seed's base).
        mean: Per-channel normalization mean applied inside the graph to [0, 1] pixels.
        std: Per-channel normalization std applied inside the graph to [0, 1] pixels.
        frame_stride: Frames between neighbouring frames of a window, at the clip's frame
            rate (1 = the paper's consecutive frames; 2 = every other frame, FR/2). Training,
            evaluation and the edge runtime (file and stream) all take every
            ``frame_stride``-th frame, so a window spans ``(frames - 1) * frame_stride + 1``
            frames.
        contrast: What the window head sees: ``none`` (the per-frame features as they are,
            the paper) or ``window_mean`` (each frame's feature minus the mean feature of its
            window, standardised per dimension with statistics learned in training: a
            feature-contrast head that sees how a window changes, not what is static in it;
            docs/motion.md). Inside the exported graph; not for ``image``.
        tdcnn_channels: Kernels of each 1-D depthwise-separable convolution of the
            time-distributed CNN head (``tdcnn``, and the spatial stream of ``two_stream``; 256
            in Howard et al.).
        flow_pairs: ``two_stream``: consecutive optical-flow frames (x and y each) stacked into
            one temporal-stream input of ``2 * flow_pairs`` channels (10 in Howard et al.);
            None = as many as fit, ``(frames - 1) // flow_chunks``.
        flow_chunks: ``two_stream``: chunks of ``flow_pairs`` flow frames the temporal stream
            sees, time-distributed and averaged (4 in Howard et al.); None = 1. The window must
            hold ``frames - 1 >= flow_pairs * flow_chunks`` flow frames. (None by default so
            that a default config, T = 4, builds; the paper's numbers are in its recipe.)
        spatial_frames: ``two_stream``: the first frames of the window its spatial stream sees
            (None = all ``frames``; 20 of a 41-frame window in Howard et al.).
        lstm_hidden: ``stfm``: hidden size of its temporal stream's LSTM (512 in the EV9V
            reference, bgx666/stfm).
        lstm_layers: ``stfm``: stacked LSTM layers (2 in the reference). ``lstm_hidden`` and
            ``lstm_layers`` also size the LSTM of ``feat1d_lstm`` and ``rcn_lstm``.
        stream_dim: ``stfm``: size of each stream's embedding and of the fused layer before the
            classifier (128 in the reference: 128 + 128 -> 128 -> K).
        spatiotemporal_channels: The fetal-workflow models' spatio-temporal unit
            (train/models/fetal.py): channels of the 3x3x3 convolutions of ``feat2d_cnn3d`` and
            ``rcn_cnn3d`` and hidden channels of the ConvLSTM of ``feat2d_convlstm`` and
            ``rcn_convlstm`` (64).
        streams: ``multistream``: the frame stride of each stream inside the window (1, 2, 4, 8:
            the full frame rate, FR/2, FR/4 and FR/8 of Sharma et al.'s multi-stream framework).
        stream_model: ``multistream``: the registered window model each stream is an instance
            of (its own weights per stream), built from this config with ``frames =
            stream_frames`` and ``frame_stride = 1``.
        stream_frames: ``multistream``: frames per stream (12 in Sharma et al.); None = as many
            as the window holds at the coarsest stride, ``(frames - 1) // max(streams) + 1``
            (12 for an 89-frame window at FR/8).
    """

    name: str = "tfw"
    backbone: str = "resnet50"
    num_classes: int = 12
    frames: int = 4
    input_size: int = 224
    in_channels: int = 1
    feature_dim: int | None = None
    dropout: float = 0.6
    gru_hidden: int = 256
    gru_layers: int = 3
    gru_dropout: float = 0.5
    attention_heads: int = 4
    attention_fc_dim: int = 2048
    width: int = 16
    # ImageNet's RGB mean/std averaged over channels (what timm uses for 1-channel models):
    # a neutral choice for training from scratch, stored here so it travels with the weights.
    mean: tuple[float, ...] = field(default=(0.449,))
    std: tuple[float, ...] = field(default=(0.226,))
    frame_stride: int = 1
    contrast: str = "none"
    tdcnn_channels: int = 256
    flow_pairs: int | None = None
    flow_chunks: int | None = None
    spatial_frames: int | None = None
    lstm_hidden: int = 512
    lstm_layers: int = 2
    stream_dim: int = 128
    spatiotemporal_channels: int = 64
    streams: tuple[int, ...] = field(default=(1, 2, 4, 8))
    stream_model: str = "c3d"
    stream_frames: int | None = None

    def __post_init__(self) -> None:
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        self.streams = tuple(int(s) for s in self.streams)
        if not self.streams or min(self.streams) < 1 or len(set(self.streams)) != len(self.streams):
            raise ValueError(f"ModelConfig.streams must be distinct strides >= 1, got {self.streams!r}")
        if self.stream_frames is not None and int(self.stream_frames) < 1:
            raise ValueError(f"ModelConfig.stream_frames must be >= 1 or None, got {self.stream_frames!r}")
        for key in ("num_classes", "frames", "input_size", "in_channels", "gru_hidden",
                    "gru_layers", "attention_heads", "attention_fc_dim", "width", "frame_stride",
                    "tdcnn_channels", "lstm_hidden", "lstm_layers", "stream_dim",
                    "spatiotemporal_channels"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"ModelConfig.{key} must be >= 1, got {getattr(self, key)!r}")
        for key in ("flow_pairs", "flow_chunks"):
            if getattr(self, key) is not None and int(getattr(self, key)) < 1:
                raise ValueError(f"ModelConfig.{key} must be >= 1 or None, got {getattr(self, key)!r}")
        if self.spatial_frames is not None and not 1 <= self.spatial_frames <= self.frames:
            raise ValueError(f"ModelConfig.spatial_frames must be None or in [1, frames={self.frames}], "
                             f"got {self.spatial_frames!r}")
        if self.feature_dim is not None and self.feature_dim < 1:
            raise ValueError(f"ModelConfig.feature_dim must be >= 1 or None, got {self.feature_dim!r}")
        for key in ("dropout", "gru_dropout"):
            if not 0.0 <= float(getattr(self, key)) < 1.0:
                raise ValueError(f"ModelConfig.{key} must be in [0, 1), got {getattr(self, key)!r}")
        for key in ("mean", "std"):
            values = getattr(self, key)
            if len(values) not in (1, self.in_channels):
                raise ValueError(f"ModelConfig.{key} needs 1 or in_channels={self.in_channels} "
                                 f"values, got {len(values)}")
        if min(self.std) <= 0:
            raise ValueError(f"ModelConfig.std must be positive, got {self.std}")
        if self.contrast not in CONTRASTS:
            raise ValueError(f"ModelConfig.contrast must be one of {CONTRASTS}, got {self.contrast!r}")

    @property
    def window_span(self) -> int:
        """Frames of the clip one window covers: ``(frames - 1) * frame_stride + 1``."""
        return (self.frames - 1) * self.frame_stride + 1

    @property
    def resolved_feature_dim(self) -> int:
        """The per-frame feature size D actually built (resolves `feature_dim=None`)."""
        if self.feature_dim is not None:
            return int(self.feature_dim)
        if self.backbone == "sononet":
            return 2 * int(self.width)
        return TINY_FEATURE_DIM if self.backbone == "tiny" else PAPER_FEATURE_DIM

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        out["streams"] = list(self.streams)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Rebuild from `to_dict()` output; unknown keys are an error, not silently dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig keys {unknown}; known: {sorted(known)}")
        return cls(**data)

    def replace(self, **changes: Any) -> "ModelConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
