"""`image`: the stage-1 ResNet image classifier, and mean voting over a window.

Per frame: normalize -> backbone -> fc0 (D->D) -> ReLU -> dropout 0.6 -> fc1 (D->K). Stage-1
training treats every frame as a sample through `forward_image`. On a window, `classify_window`
is the paper's mean voting: it returns log of the mean of the per-frame class probabilities, so
`softmax(logits)` *is* the mean-voted probability vector and `argmax` the voted class.
"""
from __future__ import annotations

import torch
from torch import nn

from echoweave.train.models.base import EchoModel
from echoweave.train.models.config import ModelConfig
from echoweave.train.models.registry import register_model

_TINY = torch.finfo(torch.float32).tiny


class ImageClassifier(EchoModel):
    """ResNet image classifier with the paper's two-layer head (fc0, fc1)."""

    # classify_window returns the log of the mean per-frame probability: softmax of it is the vote.
    aggregation = "mean_vote"
    # Mean voting classifies each frame on its own; a window contrast would feed fc1 features it
    # was never trained on.
    contrast_refusal = "votes frame by frame"

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc1 = nn.Linear(self.feature_dim, cfg.num_classes)

    def forward_image(self, image: torch.Tensor) -> torch.Tensor:
        """Single-frame logits for stage-1 training.

        Args:
            image: `(B, C, H, W)` pixels in [0, 1].

        Returns:
            `(B, K)` logits.
        """
        return self.fc1(self.dropout(self.embed_frame(image)))  # (B, K)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.fc1(self.dropout(features))  # (B, T, K) per-frame logits
        probs = torch.softmax(logits, dim=-1).transpose(1, 2).unsqueeze(-1)  # (B, K, T, 1)
        # Mean over frames as a 4-d global average pool (the form XNNPACK's mean lowers), then
        # log; the clamp keeps a fully underflowed class finite (log >= -87.3) instead of -inf.
        voted = probs.mean(dim=(-2, -1), keepdim=True).flatten(1)  # (B, K)
        return voted.clamp_min(_TINY).log()  # (B, K)


@register_model("image", "ResNet image classifier (fc0 -> ReLU -> dropout -> fc1); window = mean voting")
def image(cfg: ModelConfig) -> ImageClassifier:
    """Stage-1 image classifier."""
    return ImageClassifier(cfg)
