"""Pixel helpers shared by readers and preprocessing (numpy only)."""
from __future__ import annotations

import numpy as np

# ITU-R BT.601 luma weights: what PIL's "L" conversion and torchvision's rgb_to_grayscale use.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# The same float32 weights widened to float64. Each product uint8 * weight is a multiple of 2^-27
# below 2^8 (35 significant bits), so the float64 sum of the three is exact whatever order, and
# with or without FMA, BLAS adds them in; a float32 sum is not (OpenBLAS kernels differ per CPU
# and disagree after rounding on about 1 triple in 14 000).
_LUMA64 = _LUMA.astype(np.float64)
_CHUNK = 1 << 18  # pixels converted per float64 block (6 MiB): bounded memory, cache-sized


def rgb_to_gray(frames: np.ndarray) -> np.ndarray:
    """Convert ``(..., 3)`` uint8 RGB to ``(...)`` uint8 grayscale (BT.601).

    The luma is the exact value of ``r*0.299f + g*0.587f + b*0.114f`` (float32 weights) rounded
    once, half to even, so every machine and every port (android_demo's ``lumaOf``) agrees.
    """
    rgb = np.ascontiguousarray(frames).reshape(-1, 3)  # (N, 3)
    out = np.empty(len(rgb), np.uint8)
    for start in range(0, len(rgb), _CHUNK):
        luma = rgb[start : start + _CHUNK].astype(np.float64) @ _LUMA64  # (n,) exact
        np.clip(np.rint(luma, out=luma), 0, 255, out=luma)
        out[start : start + len(luma)] = luma
    return out.reshape(np.shape(frames)[:-1])
