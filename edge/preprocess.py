"""The preprocessing spec that travels with a model, and its numpy implementation (no torch).

`PreprocessSpec` is written into the checkpoint and the export manifest and read back by the
app, so nobody types 232/224/255 twice. `preprocess_frames` is the deterministic eval path an
app runs on uint8 frames; training's `echoweave.train.data.transforms.eval_transform(spec)`
is its torchvision twin and `tests/test_preprocess_twin.py` holds the two together.

Order of operations (both twins):
    [sector mask, clip-level, by the caller] -> grayscale (uint8, BT.601 rounded)
    -> scale to float32 [0, 1] -> antialiased bilinear resize of the shorter side
    -> centre crop.
Scaling happens *before* the resize on purpose: torchvision resizes uint8 tensors with a
fixed-point kernel only on AVX2/AVX512/arm64 CPUs and with float+round elsewhere, so a uint8
resize is not even reproducible across training machines. In float32 both sides compute the
same separable triangle-filter sums (PIL/torchvision antialias weights) and agree to ~1e-7.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from functools import lru_cache

import numpy as np

from echoweave.edge.errors import ClipReadError
from echoweave.edge.image import rgb_to_gray

__all__ = ["PreprocessSpec", "preprocess_frames", "resized_size", "centre_crop_offset", "resize_weights",
           "resize_taps"]


@dataclass(frozen=True)
class PreprocessSpec:
    """How raw uint8 frames become model input. Travels checkpoint -> manifest -> app.

    Attributes:
        grayscale: convert RGB frames to one luma channel (ITU-R BT.601, rounded to uint8).
        sector_mask: the caller zeroes everything outside the ultrasound sector first
            (`echoweave.edge.sector.estimate_sector` / `apply_sector`, clip-level).
        resize: length of the shorter side after resizing (antialiased bilinear).
        crop: side of the square centre crop taken after resizing (must be <= resize).
        scale: multiplier that maps uint8 pixels to the model's float input (1/255 -> [0, 1]).
    """

    grayscale: bool = True
    sector_mask: bool = True
    resize: int = 232
    crop: int = 224
    scale: float = 1.0 / 255.0

    def __post_init__(self):
        for name in ("grayscale", "sector_mask"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"PreprocessSpec.{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("resize", "crop"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PreprocessSpec.{name} must be a positive integer, got {value!r}")
        if self.crop > self.resize:
            raise ValueError(f"PreprocessSpec.crop ({self.crop}) must not exceed resize ({self.resize})")
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not (
            math.isfinite(self.scale) and self.scale > 0
        ):
            raise ValueError(f"PreprocessSpec.scale must be a positive number, got {self.scale!r}")

    @property
    def channels(self) -> int:
        """Input channels of the model this spec feeds (1 when grayscale)."""
        return 1 if self.grayscale else 3

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (the form stored in checkpoints and manifests)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PreprocessSpec":
        """Build a spec from `to_dict()` output; unknown keys are an error (a typo must not pass).

        Missing keys take the defaults, so older manifests stay readable.
        """
        if not isinstance(data, dict):
            raise ValueError(f"preprocessing spec must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown preprocessing spec key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**data)


def resized_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """Output (height, width) when the shorter side becomes `short_side` (torchvision's rule).

    The longer side is truncated, ``int(short_side * long / short)``, exactly as
    `torchvision.transforms.v2.Resize(int)` computes it; square frames count width as shorter.
    """
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = short_side, int(short_side * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def centre_crop_offset(size: int, crop: int) -> int:
    """Start index of a centred crop; Python's round-half-to-even, as torchvision's CenterCrop."""
    return int(round((size - crop) / 2.0))


@lru_cache(maxsize=64)
def resize_weights(in_size: int, out_size: int) -> np.ndarray:
    """``(out_size, in_size)`` float32 matrix of antialiased bilinear (triangle filter) weights.

    Output pixel i is centred at ``scale * (i + 0.5)`` in input coordinates with
    ``scale = in/out``; when downsampling the triangle is widened by `scale` so every input pixel
    contributes (the antialias, as in PIL); each row is normalised to sum 1. The arithmetic
    mirrors PyTorch's float32 kernel (`_compute_indices_min_size_weights_aa`) step by step,
    including which operations round to float32, so the matrix equals torchvision's weights
    bit for bit (tested). Read-only and cached: a stream of same-sized frames builds it once.
    """
    f32, f64 = np.float32, np.float64
    scale = f32(in_size) / f32(out_size)
    support = scale if scale >= 1.0 else f32(1.0)  # bilinear half-width 1, widened when shrinking
    invscale = f32(1.0 / f64(scale)) if scale >= 1.0 else f32(1.0)
    max_taps = int(np.ceil(support)) * 2 + 1
    centers = (f64(scale) * (np.arange(out_size) + 0.5)).astype(f32)  # (out,)
    # astype(int64) truncates toward zero, as the C++ static_cast<int64_t> does.
    lo = np.maximum(((centers - support).astype(f64) + 0.5).astype(np.int64), 0)
    hi = np.minimum(((centers + support).astype(f64) + 0.5).astype(np.int64), in_size)
    n_taps = np.clip(hi - lo, 0, max_taps)
    cols = lo[:, None] + np.arange(max_taps)  # (out, taps)
    dist = ((cols.astype(f32) - centers[:, None]).astype(f64) + 0.5) * f64(invscale)
    dist = np.abs(dist.astype(f32))
    taps = np.where(dist < 1.0, (1.0 - dist.astype(f64)).astype(f32), f32(0.0))
    taps[np.arange(max_taps)[None, :] >= n_taps[:, None]] = 0.0
    total = np.zeros(out_size, dtype=f32)
    for k in range(max_taps):  # sequential float32 sum, the kernel's order
        total = total + taps[:, k]
    taps = np.divide(taps, total[:, None], out=np.zeros_like(taps), where=total[:, None] != 0)
    weights = np.zeros((out_size, in_size + max_taps), dtype=f32)  # slack columns for edge taps
    np.put_along_axis(weights, cols, taps, axis=1)
    weights = np.ascontiguousarray(weights[:, :in_size])
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=64)
def resize_taps(in_size: int, out_size: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Output pixels ``start .. start+count`` of `resize_weights` as a few taps each.

    A row of the dense weights has at most ``2 * ceil(in/out) + 1`` non-zeros (2-3 for the usual
    mild resize), so the resize is a handful of gathers, multiplies and adds instead of a dense
    product: 0.2 ms instead of 0.8 ms for a 224x224 frame, 2 ms instead of 15-19 ms for 480x640
    (one core, median; `echoweave bench` reports the stream's split).

    Returns:
        ``(index (K, count) int, weight (K, count) float32, lo, hi)``: output pixel ``i`` is
        ``sum_k weight[k, i] * x[index[k, i]]`` summed in tap order (the float32 kernel's order)
        over the input band ``x = input[lo:hi]`` (indices are relative to ``lo``); taps past a
        row's last non-zero weight have weight 0. Read-only, cached.
    """
    w = resize_weights(in_size, out_size)[start : start + count]  # (count, in)
    nonzero = w != 0
    first = nonzero.argmax(axis=1)  # (count,)
    last = in_size - 1 - nonzero[:, ::-1].argmax(axis=1)
    taps = int((last - first).max()) + 1
    lo, hi = int(first.min()), int(last.max()) + 1
    index = np.minimum(first[None, :] + np.arange(taps)[:, None], hi - 1)  # (K, count), inside the band
    weight = np.take_along_axis(w.T, index, axis=0).astype(np.float32)  # w.T (in, count) -> (K, count)
    weight[np.arange(taps)[:, None] > (last - first)[None, :]] = 0.0
    index = np.ascontiguousarray(index - lo)
    for a in (index, weight):
        a.setflags(write=False)
    return index, weight, lo, hi


def _resize_last_axis(x: np.ndarray, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``(..., n) -> (..., count)``: the taps of `resize_taps` applied along the last axis."""
    out = x[..., index[0]] * weight[0]
    for k in range(1, len(index)):
        out += x[..., index[k]] * weight[k]
    return out


def _resize_rows(x: np.ndarray, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``(..., n, W) -> (..., count, W)``: the taps applied along the second-to-last axis."""
    out = x[..., index[0], :] * weight[0][:, None]
    for k in range(1, len(index)):
        out += x[..., index[k], :] * weight[k][:, None]
    return out


def _check_frames(frames: np.ndarray, source: str) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ClipReadError(source, f"frames must be a uint8 numpy array, got {getattr(frames, 'dtype', type(frames))}")
    if frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[-1] != 3):
        raise ClipReadError(source, f"frames must be (T, H, W) or (T, H, W, 3), got shape {frames.shape}")
    if 0 in frames.shape:
        raise ClipReadError(source, f"frames must not be empty, got shape {frames.shape}")


def preprocess_frames(frames: np.ndarray, spec: PreprocessSpec, source: str = "frames") -> np.ndarray:
    """Deterministic eval preprocessing: uint8 frames -> float32 model input.

    When ``spec.sector_mask`` is true the caller applies the clip-level sector mask first
    (``apply_sector(frames, estimate_sector(frames))`` from `echoweave.edge.sector`) and passes the
    masked frames here; this function never estimates a sector itself (one frame is not enough).

    Args:
        frames: ``uint8`` ``(T, H, W)`` grayscale or ``(T, H, W, 3)`` RGB, already sector-masked
            when the spec asks for it.
        spec: the model's preprocessing spec.
        source: file the frames came from, used only in error messages.

    Returns:
        ``float32`` ``(T, C, crop, crop)`` with C = 1 for grayscale specs (3 for RGB input to an
        RGB spec), values in ``[0, 255 * spec.scale]``.

    Raises:
        ClipReadError: frames are not uint8, have the wrong rank, or are empty.
    """
    _check_frames(frames, source)
    if frames.ndim == 4 and spec.grayscale:
        frames = rgb_to_gray(frames)  # (T, H, W) uint8, rounded like the torch twin
    planes = frames[:, None] if frames.ndim == 3 else frames.transpose(0, 3, 1, 2)  # (T, C, H, W)
    t, c, h, w = planes.shape
    new_h, new_w = resized_size(h, w, spec.resize)
    # Resizing then cropping equals resizing only the kept rows/columns; those read only a band
    # of the input (about a third of a 4:3 frame is skipped: it would contribute exact zeros).
    iy, wy, y0, y1 = resize_taps(h, new_h, centre_crop_offset(new_h, spec.crop), spec.crop)
    ix, wx, x0, x1 = resize_taps(w, new_w, centre_crop_offset(new_w, spec.crop), spec.crop)
    x = planes[:, :, y0:y1, x0:x1].astype(np.float32) * np.float32(spec.scale)  # (T, C, h', w') in [0, 1]
    out = _resize_rows(_resize_last_axis(x, ix, wx), iy, wy)  # columns first, then rows, as torch
    return np.ascontiguousarray(out, dtype=np.float32)  # (T, C, crop, crop)
