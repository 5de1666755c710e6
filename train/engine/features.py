"""Cached per-frame features for stage 2 with a frozen backbone (fast CPU experiments).

With the backbone fixed, every frame's `embed_frame` output never changes, so it is computed
once per clip and the head trains on windows of cached ``(T, D)`` features. The paper fine-tunes
the backbone in stage 2; this is an option for the CPU Table-2 experiment, not the default.
"""
from __future__ import annotations

import numpy as np
import torch

from echoweave.train.engine.data import ClipStore, WindowSamples, _as_video


@torch.no_grad()
def embed_clips(model, store: ClipStore, transform, device, batch: int = 64) -> list[torch.Tensor]:
    """``embed_frame`` of every frame of every clip (eval transform, no augmentation).

    Returns:
        One ``(T_clip, D)`` float32 CPU tensor per clip of the store.
    """
    was_training = model.training
    model.eval()
    feats = []
    for clip in store.clips:
        x = transform(_as_video(clip.frames))  # (T, 1, H, W)
        parts = [model.embed_frame(x[i : i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)]
        feats.append(torch.cat(parts))  # (T, D)
    model.train(was_training)
    return feats


class FeatureWindows(WindowSamples):
    """`WindowSamples` over cached features: ``x`` is ``(T, D)`` instead of pixels."""

    def __init__(self, store: ClipStore, features: list[torch.Tensor], clip_indices, frames: int,
                 sampler: str, train: bool, windows: int = 1, repeats: int = 1, seed: int = 0, stride: int = 1,
                 bank=None):
        self.features = features
        super().__init__(store, clip_indices, transform=None, frames=frames, sampler=sampler, train=train,
                         windows=windows, repeats=repeats, seed=seed, stride=stride, bank=bank)

    def __getitem__(self, i: int) -> dict:
        c, idx = self.items[i]
        if idx is None:
            idx = self._draw(c, i)
        return {"x": self.features[c][torch.as_tensor(np.asarray(idx))], "label": int(self.store.labels[c]), "clip": c,
                **self._centre(i)}


__all__ = ["embed_clips", "FeatureWindows"]
