"""Temporal feature weaving and token splitting, as reshape/transpose only.

TFW (paper section 2.3): split each frame's D-vector into `chunks` pieces of D/chunks; woven
step k concatenates chunk k of every frame. With T = chunks = 4 and D = 2048 that is 4 steps of
2048, each the same 512-d patch of the feature across the 4 frames.

Written as unflatten -> transpose -> flatten, never a gather (`x[:, perm]`, `index_select`):
XNNPACK delegates views and permutes but not gathers (docs/ARCHITECTURE.md, "The model contract").
"""
from __future__ import annotations

import torch


def _check(features: torch.Tensor, chunks: int, who: str) -> None:
    if torch.jit.is_tracing():  # sizes are traced values there; checking them only warns
        return
    if features.dim() != 3 or features.shape[-1] % chunks:
        raise ValueError(f"{who}: expects features (B, T, D) with D divisible by {chunks}, "
                         f"got {tuple(features.shape)}")


def weave_features(features: torch.Tensor, chunks: int) -> torch.Tensor:
    """Temporal feature weaving.

    Args:
        features: `(B, T, D)` per-frame features.
        chunks: Pieces per frame vector (T in the paper); D must be divisible by it.

    Returns:
        `(B, chunks, T * D / chunks)`; `out[b, k, t*c:(t+1)*c] == features[b, t, k*c:(k+1)*c]`
        with c = D / chunks.
    """
    _check(features, chunks, "weave_features")
    x = features.unflatten(-1, (chunks, -1))  # (B, T, chunks, c)
    return x.transpose(1, 2).flatten(2)  # (B, chunks, T*c)


def split_into_tokens(features: torch.Tensor, chunks: int) -> torch.Tensor:
    """Cut every frame vector into `chunks` tokens, frame-major (the attention baseline's input).

    Args:
        features: `(B, T, D)` per-frame features.
        chunks: Tokens per frame; D must be divisible by it.

    Returns:
        `(B, T * chunks, D / chunks)`; token `t * chunks + k` is chunk k of frame t.
    """
    _check(features, chunks, "split_into_tokens")
    return features.unflatten(-1, (chunks, -1)).flatten(1, 2)  # (B, T*chunks, c)
