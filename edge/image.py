"""Pixel helpers shared by readers and preprocessing (numpy only)."""
from __future__ import annotations

import numpy as np

# ITU-R BT.601 luma weights: what PIL's "L" conversion and torchvision's rgb_to_grayscale use.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def rgb_to_gray(frames: np.ndarray) -> np.ndarray:
    """Convert ``(..., 3)`` uint8 RGB to ``(...)`` uint8 grayscale (BT.601, rounded)."""
    gray = frames.astype(np.float32) @ _LUMA
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)
