"""Which frames of a clip a model sees: pure index math (numpy), no pixels touched.

    rng = np.random.default_rng(0)
    sample_spaced(40, 4, rng)        # training: a random frame in each of 4 equal segments
    sample_spaced(40, 4)             # eval: the centre of each segment -> [5, 15, 25, 35]
    sample_consecutive(40, 4)        # eval: 4 neighbours in the middle -> [18, 19, 20, 21]
    sample_stride(40, 4, stride=4)   # FR/4: every 4th frame -> [13, 17, 21, 25]
    sliding_windows(10, 4, hop=2)    # whole-clip evaluation -> rows [0..3], [2..5], [4..7], [6..9]

Passing an `rng` (a `numpy.random.Generator`) means training: positions are drawn at random.
Without it, sampling is deterministic and centred (evaluation). Every function returns
`np.int64` indices into the clip.

Short clips: with ``short="repeat"`` (the default) a clip with fewer frames than a sampler
needs is padded by **repeating its last frame** (indices past the end are clamped to
``num_frames - 1``), so a 3-frame clip gives ``[0, 1, 2, 2]``; the last frame is frozen rather
than looped because a loop would jump from end-systole back to the first frame. With
``short="error"`` such a clip raises `ShortClipError`, which says how many frames were needed
and how many there are.
"""
from __future__ import annotations

import numpy as np

from echoweave.edge.errors import ClipReadError

__all__ = [
    "ShortClipError",
    "sample_consecutive",
    "sample_spaced",
    "sample_stride",
    "sample_first",
    "sliding_windows",
]

SHORT_POLICIES = ("repeat", "error")


class ShortClipError(ClipReadError):
    """A clip has fewer frames than a sampler needs (and ``short="error"`` was asked for).

    Args:
        needed: frames the sampler needs.
        available: frames the clip has.
        path: the clip's file, when the caller knows it (samplers only see a frame count).
    """

    def __init__(self, needed: int, available: int, path: str = "clip"):
        self.needed, self.available = needed, available
        super().__init__(
            path,
            f"needs {needed} frames but has only {available}; pass short='repeat' to pad by repeating the last frame",
        )


def _check(num_frames: int, T: int, short: str) -> None:
    if short not in SHORT_POLICIES:
        raise ValueError(f"short must be one of {SHORT_POLICIES}, got {short!r}")
    if T < 1:
        raise ValueError(f"T (frames per sample) must be at least 1, got {T}")
    if num_frames < 1:
        raise ClipReadError("clip", f"has {num_frames} frames; cannot sample from an empty clip")


def _fit(indices: np.ndarray, num_frames: int, needed: int, short: str) -> np.ndarray:
    """Apply the short-clip policy: clamp to the last frame, or refuse."""
    if num_frames < needed and short == "error":
        raise ShortClipError(needed, num_frames)
    return np.minimum(indices, num_frames - 1).astype(np.int64)


def _start(room: int, rng: np.random.Generator | None) -> int:
    """First index of a run that leaves `room` spare frames: random in training, centred in eval."""
    if room <= 0:
        return 0
    return int(rng.integers(0, room + 1)) if rng is not None else room // 2


def sample_consecutive(
    num_frames: int, T: int, rng: np.random.Generator | None = None, short: str = "repeat"
) -> np.ndarray:
    """One segment of T neighbouring frames (the paper's "consecutive").

    Args:
        num_frames: frames in the clip.
        T: frames to return.
        rng: random start (training) when given; otherwise the run is centred (evaluation).
        short: "repeat" pads a short clip with its last frame, "error" raises `ShortClipError`.

    Returns:
        ``(T,)`` int64 frame indices.
    """
    _check(num_frames, T, short)
    start = _start(num_frames - T, rng)
    return _fit(start + np.arange(T), num_frames, T, short)


def sample_spaced(
    num_frames: int, T: int, rng: np.random.Generator | None = None, short: str = "repeat"
) -> np.ndarray:
    """T equal segments x 1 frame each (TSN; the paper's "spaced").

    Segment k covers frames ``[floor(k*L), floor((k+1)*L))`` with ``L = num_frames / T``, so
    the segments tile the whole clip (no tail is ever skipped) and each holds at least one frame
    when ``num_frames >= T``.

    Args:
        num_frames: frames in the clip.
        T: segments, one frame from each.
        rng: a random frame inside each segment (training) when given; otherwise each
            segment's centre frame ``floor((k + 0.5) * L)`` (evaluation).
        short: "repeat" returns all frames then repeats the last (``[0, 1, 2, 2]`` for 3 of 4);
            "error" raises `ShortClipError`.

    Returns:
        ``(T,)`` int64 frame indices, non-decreasing.
    """
    _check(num_frames, T, short)
    if num_frames < T:
        return _fit(np.arange(T), num_frames, T, short)
    bounds = np.floor(np.arange(T + 1) * (num_frames / T)).astype(np.int64)  # (T+1,) segment edges
    if rng is None:
        return np.floor((np.arange(T) + 0.5) * (num_frames / T)).astype(np.int64)
    return rng.integers(bounds[:-1], bounds[1:]).astype(np.int64)


def sample_stride(
    num_frames: int, T: int, stride: int, rng: np.random.Generator | None = None, short: str = "repeat"
) -> np.ndarray:
    """T frames, every `stride`-th (stride 2/4/8 = FR/2, FR/4, FR/8 of the acquisition rate).

    Args:
        num_frames: frames in the clip.
        T: frames to return.
        stride: gap between returned frames (1 = consecutive).
        rng: random start (training) when given; otherwise the run is centred (evaluation).
        short: "repeat" clamps indices past the end to the last frame (the stride is kept, so
            the frame rate meaning holds for the frames that exist); "error" raises
            `ShortClipError`.

    Returns:
        ``(T,)`` int64 frame indices.
    """
    _check(num_frames, T, short)
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    span = (T - 1) * stride + 1
    start = _start(num_frames - span, rng)
    return _fit(start + stride * np.arange(T), num_frames, span, short)


def sample_first(num_frames: int, T: int, short: str = "repeat") -> np.ndarray:
    """The first T frames (what a live scanner has after T frames; streaming warm-up).

    Args:
        num_frames: frames in the clip.
        T: frames to return.
        short: "repeat" pads a short clip with its last frame, "error" raises `ShortClipError`.

    Returns:
        ``(T,)`` int64 frame indices.
    """
    _check(num_frames, T, short)
    return _fit(np.arange(T), num_frames, T, short)


def sliding_windows(
    num_frames: int, T: int, hop: int, stride: int = 1, cover_end: bool = False, short: str = "repeat"
) -> np.ndarray:
    """Every window of T frames, `hop` frames apart, for evaluating a whole clip.

    Args:
        num_frames: frames in the clip.
        T: frames per window.
        hop: frames between the starts of neighbouring windows.
        stride: gap between frames inside a window (1 = consecutive).
        cover_end: also add a window that ends on the last frame when the regular hops stop
            short of it (the last hop is then shorter).
        short: a clip shorter than one window gives a single window padded by repeating the
            last frame ("repeat"), or raises `ShortClipError` ("error").

    Returns:
        ``(W, T)`` int64 frame indices, one row per window, in time order.
    """
    _check(num_frames, T, short)
    if hop < 1 or stride < 1:
        raise ValueError(f"hop and stride must be at least 1, got hop={hop}, stride={stride}")
    span = (T - 1) * stride + 1
    last_start = max(num_frames - span, 0)
    starts = np.arange(0, last_start + 1, hop)
    if cover_end and starts[-1] != last_start:
        starts = np.append(starts, last_start)
    windows = starts[:, None] + stride * np.arange(T)[None, :]  # (W, T)
    return _fit(windows, num_frames, span, short)
