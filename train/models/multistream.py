"""`multistream`: late fusion of one clip seen at several frame rates (Sharma et al., fetal workflow).

The seed (`../shared/seeds/fetal_workflow_spatiotemporal.txt`, section 2.3) takes its best 2D+t
model and trains it "using near consecutive frames with fine temporal changes (FR/2) and
long-term motion with coarse temporal changes (FR/8)", each clip "approximated by 12 frames
using uniform sampling", and fuses the streams with "late fusion on learned model softmax
probabilities". Here every stream is its own instance of a registered window model
(``stream_model``, separate weights: the seed trains one model per frame rate), and the window
output is the log of the streams' mean softmax probability, so ``softmax(output)`` *is* the
fused probability (no learned fusion weights, as in the seed):

    clip (B, T, C, H, W), T = frames, consecutive frames at the clip's rate
      stream s (stride s_i): clip[:, start_i : start_i + (n - 1) * s_i + 1 : s_i]   (B, n, C, H, W)
      p_i = softmax(stream_model_i(stream s_i))                                      (B, K)
    forward = log(mean_i p_i)                                                        (B, K)

The model's window is the full-rate span the coarsest stream needs (``(n - 1) * max(streams) +
1`` = 89 frames for 12 frames at FR/8) and each stream is a static strided slice of it inside
the graph, so export, the edge's window sampling and streaming see one ordinary window-only
model of T = ``frames`` consecutive frames (``frame_stride`` 1; a larger one makes every stream's
rate that much coarser). All streams are centred on the window's centre: the same moment of the
clip at four time scales.

Training is end to end on the fused output (cross-entropy of the mean probability, i.e. the
likelihood of an equal-weight mixture of the streams) rather than one run per stream as in the
seed: the kit trains one model per run, and the exported graph is then exactly what was trained.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from echoweave.train.models.base import VideoModel
from echoweave.train.models.config import ModelConfig
from echoweave.train.models.registry import build_model, init_from_image_model, register_model


def stream_frames(cfg: ModelConfig) -> int:
    """Frames per stream: ``cfg.stream_frames``, or as many as ``cfg.frames`` holds at the
    coarsest stride (``(frames - 1) // max(streams) + 1``)."""
    if cfg.stream_frames is not None:
        return int(cfg.stream_frames)
    return (cfg.frames - 1) // max(cfg.streams) + 1


def stream_slices(frames: int, strides: tuple[int, ...], per_stream: int) -> list[slice]:
    """Where each stream's frames lie in a window of ``frames`` consecutive frames.

    Each stream takes ``per_stream`` frames ``stride`` apart, centred on the window's centre
    (a stream of even span sits half a frame early).

    Args:
        frames: window length T.
        strides: the streams' frame strides.
        per_stream: frames per stream n.

    Returns:
        One ``slice(start, stop, stride)`` per stream; ``window[slice]`` has ``per_stream`` frames.

    Raises:
        ValueError: the window is shorter than the coarsest stream's span.
    """
    need = (per_stream - 1) * max(strides) + 1
    if frames < need:
        raise ValueError(f"multistream: {per_stream} frames at stride {max(strides)} span {need} frames, "
                         f"but the window has frames={frames}; set model.frames to at least {need}")
    out = []
    for s in strides:
        span = (per_stream - 1) * s + 1
        start = (frames - span) // 2
        out.append(slice(start, start + span, s))
    return out


class MultiStream(VideoModel):
    """Streams at several frame strides over one window, fused by averaging their softmax.

    Attributes:
        strides: each stream's frame stride inside the window.
        per_stream: frames each stream sees.
        slices: each stream's ``slice`` of the window's frame axis.
        stream_nets: one ``stream_model`` instance per stream (separate weights).
    """

    # The stream model decides whether it can contrast its window (its config carries `contrast`).
    contrast_refusal = None

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        if cfg.stream_model == "multistream":
            raise ValueError("multistream: stream_model cannot be multistream itself")
        self.strides = tuple(cfg.streams)
        self.per_stream = stream_frames(cfg)
        self.slices = stream_slices(cfg.frames, self.strides, self.per_stream)
        sub = cfg.replace(name=cfg.stream_model, frames=self.per_stream, frame_stride=1)
        self.stream_nets = nn.ModuleList(build_model(sub) for _ in self.strides)
        first = self.stream_nets[0]
        if first.derived_inputs():
            # Each stream would need its own derived input of its own frames: not declared yet.
            raise ValueError(f"multistream: stream model {cfg.stream_model!r} takes derived inputs "
                             f"({[d['name'] for d in first.derived_inputs()]}); use a pixel-only window model")

    def export_limits(self) -> dict[tuple[str, str], str]:
        """What the stream model's operators cannot do is what the whole graph cannot do."""
        return {key: f"stream model {self.cfg.stream_model}: {reason}"
                for key, reason in self.stream_nets[0].export_limits().items()}

    def init_from_image_state(self, image_state_dict: Mapping[str, torch.Tensor]) -> list[str]:
        """Start every stream from the stage-1 image model, as its stream model would
        (`init_from_image_model`); returns the copied keys of this model."""
        copied = []
        for i, net in enumerate(self.stream_nets):
            copied += [f"stream_nets.{i}.{k}" for k in init_from_image_model(net, image_state_dict)]
        return sorted(copied)

    def stream_logits(self, clip: torch.Tensor) -> list[torch.Tensor]:
        """Each stream model's output on its strided sub-window.

        Args:
            clip: ``(B, T, C, H, W)`` pixels in [0, 1], T = ``frames``.

        Returns:
            One ``(B, K)`` tensor per stream, in ``streams`` order.
        """
        self.check_clip(clip)
        return [net(clip[:, sl]) for net, sl in zip(self.stream_nets, self.slices)]  # each from (B, n, C, H, W)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Log of the streams' mean softmax probability ``(B, K)`` of a clip ``(B, T, C, H, W)``."""
        log_probs = torch.stack([torch.log_softmax(z, dim=-1) for z in self.stream_logits(clip)], dim=1)  # (B, S, K)
        # log(mean_i p_i) = logsumexp_i(log p_i) - log S: no underflow to log(0) for a class all
        # streams rule out, so the training loss stays finite and its gradient alive.
        return torch.logsumexp(log_probs, dim=1) - math.log(len(self.stream_nets))  # (B, K)

    def input_spec(self) -> dict[str, Any]:
        return {**super().input_spec(), "streams": [
            {"stride": s, "start": sl.start, "frames": self.per_stream} for s, sl in zip(self.strides, self.slices)]}


@register_model("multistream", "late fusion (mean softmax) of one window model per frame rate "
                               "(streams FR, FR/2, FR/4, FR/8 sliced from one full-rate window)")
def multistream(cfg: ModelConfig) -> MultiStream:
    """Multi-stream late fusion over frame rates."""
    return MultiStream(cfg)
