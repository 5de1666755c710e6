"""`gru` and `tfw`: per-frame ResNet features -> (optionally woven) -> unrolled GRU -> last step.

    features (B, T, D) --weave?--> (B, T, D) --GRU(H, L layers, dropout)--> (B, T, H)
                       --last step--> (B, H) --dropout--> Linear H->K

`tfw` weaves T chunks of D/T across the frames first (the paper's method); `gru` feeds the
frame features as they are (the paper's no-weaving baseline). Both have exactly the same
parameters: weaving is a reshape and adds none. With ResNet-50, D=2048, H=256, 3 layers, K=12:
CNN 27,698,112 + GRU 2,560,512 + head 3,084 = 30,261,708.
"""
from __future__ import annotations

import torch
from torch import nn

from echoweave.train.models.base import EchoModel
from echoweave.train.models.config import ModelConfig
from echoweave.train.models.registry import register_model
from echoweave.train.models.unrolled_gru import UnrolledGRU
from echoweave.train.models.weaving import weave_features


class RecurrentClassifier(EchoModel):
    """CNN-GRU window classifier; `weave=True` is ResNet-GRU-TFW.

    Args:
        cfg: Model config (uses gru_hidden, gru_layers, gru_dropout, dropout).
        weave: Apply temporal feature weaving (T chunks) before the GRU.
    """

    def __init__(self, cfg: ModelConfig, weave: bool):
        super().__init__(cfg)
        if weave and self.feature_dim % self.frames:
            raise ValueError(f"tfw needs feature_dim divisible by frames: {self.feature_dim} % "
                             f"{self.frames} != 0 (set ModelConfig.feature_dim)")
        self.weave = weave
        self.gru = UnrolledGRU(self.feature_dim, cfg.gru_hidden, cfg.gru_layers, cfg.gru_dropout)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.gru_hidden, cfg.num_classes)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        seq = weave_features(features, self.frames) if self.weave else features  # (B, T, D)
        out, _ = self.gru(seq)  # (B, T, H)
        # Slice + flatten rather than out[:, -1]: a select would stay outside the XNNPACK delegate.
        last = out[:, -1:].flatten(1)  # (B, H)
        return self.head(self.dropout(last))  # (B, K) from the last step


@register_model("gru", "ResNet features -> GRU over the T frames (no-weaving baseline)")
def gru(cfg: ModelConfig) -> RecurrentClassifier:
    """ResNet-GRU baseline."""
    return RecurrentClassifier(cfg, weave=False)


@register_model("tfw", "ResNet features -> temporal feature weaving -> GRU (the paper's model)")
def tfw(cfg: ModelConfig) -> RecurrentClassifier:
    """ResNet-GRU with temporal feature weaving."""
    return RecurrentClassifier(cfg, weave=True)
