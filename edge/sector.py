"""Find the ultrasound fan (sector) in a clip and blank everything else (numpy only).

Why motion: inside the fan the image changes every frame (speckle, moving walls, valves); outside
it the scanner draws static things: patient name, date, hospital, settings, depth scale, ECG
baseline, logos. So the per-pixel temporal standard deviation separates the two:

1. ``activity = std over frames`` of the grayscale clip; ``active = activity > threshold``.
2. A majority (box) filter, computed with cumulative sums, removes isolated flickering pixels and
   fills speckle-sized holes without growing the region.
3. The largest 4-connected region is kept (small moving UI such as a blinking cursor or an ECG
   sweep far from the fan is dropped).
4. The region is made "convex-ish": filled row-wise between its leftmost and rightmost pixel,
   then column-wise, then row-wise again. A fan is convex, so this recovers dark blood pools and
   weakly moving tissue inside it without reaching out to static text beside it.

This is also the de-identification step for pixels: `apply_sector` zeroes every pixel outside
the mask (burned-in names and dates included) and crops to the mask's bounding box. The
estimate itself is computed from pixel statistics only and never reads or stores header data.

Large frames are estimated on a strided copy at most `MAX_ESTIMATE_SIDE` (512) pixels on the
longer side, and the mask is scaled back up: a 10000 x 10000 frame costs the estimate what a
500 x 500 one does (the fan is a large smooth shape; 1/20 of its edge resolution loses nothing a
224-pixel model input could see).

A single frame (or a frozen loop with no motion) cannot reveal the fan. Then the fallback is the
largest non-dark connected region, row/column filled (text is usually small separate blobs),
or the whole image if that region is implausibly small; ``Sector.method`` says which was used
and `mask_clip` copies it into ``clip.meta["sector_method"]`` so callers can tell a motion
mask from a guess.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from echoweave.edge.clip import Clip
from echoweave.edge.image import rgb_to_gray

MAX_ESTIMATE_SIDE = 512  # longer side of the frames the estimate runs on
MOTION = "motion"
BRIGHTNESS = "single_frame_brightness"
WHOLE_IMAGE = "whole_image"


@dataclass
class Sector:
    """Where the ultrasound fan is.

    Attributes:
        mask: ``(H, W)`` bool, True inside the fan.
        bbox: ``(top, bottom, left, right)`` of the mask, bottom/right exclusive
            (``frames[:, top:bottom, left:right]``).
        method: ``"motion"`` (temporal change), ``"single_frame_brightness"`` or ``"whole_image"``
            (fallbacks when the clip shows no motion).
    """

    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    method: str = MOTION

    @property
    def from_motion(self) -> bool:
        return self.method == MOTION


def box_mean(mask: np.ndarray, size: int) -> np.ndarray:
    """Mean of ``mask`` over a ``size x size`` window centred on each pixel (zero padding)."""
    r = size // 2
    x = np.pad(mask.astype(np.float32), r)
    c = np.pad(np.cumsum(np.cumsum(x, 0), 1), ((1, 0), (1, 0)))  # summed-area table
    h, w = mask.shape
    s = c[size : size + h, size : size + w] - c[:h, size : size + w] - c[size : size + h, :w] + c[:h, :w]
    return s / float(size * size)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected True region of a 2-D bool mask (run-length union-find)."""
    parent: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    runs = []  # (row, start, stop, run_id)
    prev: list[tuple[int, int, int]] = []
    for y in range(mask.shape[0]):
        row = np.concatenate(([0], mask[y].astype(np.int8), [0]))
        edges = np.flatnonzero(np.diff(row))
        cur = []
        for a, b in zip(edges[::2], edges[1::2]):
            rid = len(parent)
            parent.append(rid)
            for pa, pb, pid in prev:  # runs of the previous row that overlap this one
                if pa < b and a < pb:
                    ra, rb = find(rid), find(pid)
                    if ra != rb:
                        parent[ra] = rb
            cur.append((int(a), int(b), rid))
            runs.append((y, int(a), int(b), rid))
        prev = cur
    out = np.zeros(mask.shape, bool)
    if not runs:
        return out
    sizes: dict[int, int] = {}
    for y, a, b, rid in runs:
        root = find(rid)
        sizes[root] = sizes.get(root, 0) + (b - a)
    best = max(sizes, key=sizes.get)
    for y, a, b, rid in runs:
        if find(rid) == best:
            out[y, a:b] = True
    return out


def _fill_rows(mask: np.ndarray) -> np.ndarray:
    out = np.zeros_like(mask)
    rows = np.flatnonzero(mask.any(1))
    for y in rows:
        xs = np.flatnonzero(mask[y])
        out[y, xs[0] : xs[-1] + 1] = True
    return out


def fill_convexish(mask: np.ndarray) -> np.ndarray:
    """Fill between the extreme pixels of each row, then each column, then each row again."""
    return _fill_rows(_fill_rows(_fill_rows(mask).T).T)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1


def _clean(active: np.ndarray, smooth: int) -> np.ndarray:
    if smooth > 1:
        active = box_mean(active, smooth) > 0.5  # majority vote: no growth, no speckle holes
    return fill_convexish(largest_component(active))


def open_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Morphological opening with a ``size x size`` square: erase every structure thinner than
    ``size`` (lines, text strokes) and keep the rest as it was."""
    eroded = box_mean(mask, size) > 1.0 - 1e-6  # every pixel of the window set
    return (box_mean(eroded, size) > 1e-6) & mask


def _fallback(gray: np.ndarray, smooth: int, min_fraction: float) -> Sector:
    h, w = gray.shape[1:]
    bright = gray.max(0) > 8  # "non-dark": above the black background of the display
    # An ECG trace or depth scale drawn against the fan joins it into one bright region; they are
    # thin lines, so an opening wider than a line cuts them off before the largest region is taken.
    bright = open_mask(bright, max(5, min(h, w) // 20) | 1)
    mask = _clean(bright, smooth)
    if mask.mean() >= min_fraction:
        return Sector(mask, _bbox(mask), BRIGHTNESS)
    full = np.ones((h, w), bool)
    return Sector(full, (0, h, 0, w), WHOLE_IMAGE)


def estimate_sector(
    frames: np.ndarray,
    *,
    threshold: float | None = None,
    smooth: int | None = None,
    min_fraction: float = 0.05,
    max_side: int = MAX_ESTIMATE_SIDE,
) -> Sector:
    """Estimate the ultrasound fan from the pixels that change over the clip.

    Args:
        frames: ``(T, H, W)`` uint8 (``(T, H, W, 3)`` is converted to luma first).
        threshold: temporal std (grey levels) above which a pixel counts as moving. Default
            ``max(0.5, 3 * 25th percentile of the std)``: digital displays are exactly static
            outside the fan (std 0), while dim fan regions move by only ~1 grey level; a
            frame-grabbed video with noise everywhere raises the 25th percentile (mostly
            background) and with it the threshold.
        smooth: majority-filter window in pixels; default ``max(3, min(H, W) // 40)`` (odd).
        min_fraction: a moving region smaller than this share of the image is not trusted and
            the single-frame fallback is used instead.
        max_side: frames larger than this on their longer side are estimated on every k-th
            pixel (k = ceil(side / max_side)) and the mask scaled back; 0 = full resolution.

    Returns:
        A `Sector`; ``method`` tells whether it came from motion or a fallback.
    """
    if frames.ndim not in (3, 4) or frames.shape[0] == 0:
        raise ValueError(f"frames must be (T, H, W) or (T, H, W, 3) with T >= 1, got {frames.shape}")
    step = -(-max(frames.shape[1:3]) // max_side) if max_side else 1
    if step > 1:  # bounded work and memory: estimate on a strided view, scale the mask back up
        small = estimate_sector(frames[:, ::step, ::step], threshold=threshold, min_fraction=min_fraction,
                                smooth=None if smooth is None else max(3, smooth // step) | 1, max_side=0)
        mask = upscale_mask(small.mask, step, frames.shape[1:3])
        return Sector(mask, _bbox(mask), small.method)
    gray = rgb_to_gray(frames) if frames.ndim == 4 else np.asarray(frames)
    h, w = gray.shape[1:]
    if smooth is None:
        smooth = max(3, min(h, w) // 40) | 1
    if gray.shape[0] < 2:
        return _fallback(gray, smooth, min_fraction)
    std = gray.std(0, dtype=np.float32)  # (H, W)
    if threshold is None:
        threshold = max(0.5, 3.0 * float(np.percentile(std, 25)))
    mask = _clean(std > threshold, smooth)
    if mask.mean() < min_fraction:  # frozen loop or near-static clip: motion says nothing
        return _fallback(gray, smooth, min_fraction)
    return Sector(mask, _bbox(mask), MOTION)


def upscale_mask(mask: np.ndarray, step: int, shape: tuple[int, int]) -> np.ndarray:
    """A mask estimated on every ``step``-th pixel, scaled back to ``shape`` (nearest neighbour)."""
    return np.repeat(np.repeat(mask, step, axis=0), step, axis=1)[: shape[0], : shape[1]]


def apply_sector(frames: np.ndarray, sector: Sector) -> np.ndarray:
    """Zero every pixel outside the fan and crop to its bounding box.

    Args:
        frames: ``(T, H, W)`` or ``(T, H, W, 3)`` uint8 of the same H, W as ``sector.mask``.

    Returns:
        ``(T, bottom-top, right-left[, 3])`` uint8, a new array.
    """
    if frames.shape[1:3] != sector.mask.shape:
        raise ValueError(f"frames {frames.shape[1:3]} and sector mask {sector.mask.shape} differ in size")
    top, bottom, left, right = sector.bbox
    mask = sector.mask[top:bottom, left:right]
    crop = frames[:, top:bottom, left:right]
    keep = mask[None, :, :, None] if frames.ndim == 4 else mask[None]
    return np.where(keep, crop, 0).astype(np.uint8)


def mask_clip(clip: Clip, **kw) -> Clip:
    """Return ``clip`` with only its fan kept (cropped), recording the sector in ``meta``.

    ``meta`` gains ``sector_bbox`` (in the original frame), ``sector_method`` and
    ``sector_from_motion`` (False for single-frame or frozen clips: the mask is a guess).
    Keyword arguments go to `estimate_sector`.
    """
    sector = estimate_sector(clip.frames, **kw)
    meta = dict(clip.meta, sector_bbox=list(sector.bbox), sector_method=sector.method, sector_from_motion=sector.from_motion)
    return Clip(apply_sector(clip.frames, sector), clip.fps, clip.patient_id, clip.label, clip.source, clip.view, meta)
