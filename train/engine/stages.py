"""Adapters that give each training stage a plain ``forward(x) -> logits``.

DDP synchronises gradients only through the wrapped module's ``forward``, so stage 1 (single
frames) and the cached-feature head of stage 2 are wrapped rather than called through side
entry points.
"""
from __future__ import annotations

import torch
from torch import nn


class ImageStage(nn.Module):
    """Stage 1: every frame is a sample; ``x`` is ``(B, 1, H, W)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_image(x)  # (B, K)


class HeadStage(nn.Module):
    """Stage 2 on cached per-frame features; ``x`` is ``(B, T, D)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.classify_window(x)  # (B, K)
