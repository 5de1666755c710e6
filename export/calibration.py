"""Real clips for export: the int8 calibration set (training patients) and the parity set
(held-out patients), both preprocessed exactly as the edge does (`preprocess_frames`).

Calibrating on random tensors gives activation ranges no echo frame ever produces; the
checkpoint names its dataset and its held-out patients, so both sets come from there.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from echoweave.edge.preprocess import PreprocessSpec, preprocess_frames
from echoweave.export.formats import ExportError


@dataclass
class WindowSet:
    """Preprocessed windows of real clips.

    Attributes:
        windows: ``float32 (N, T, C, S, S)`` model input in [0, 1].
        labels: ``(N,)`` class id per window.
        clip_ids: ``(N,)`` index of the source clip in the store (windows of one clip share it).
    """

    windows: np.ndarray
    labels: np.ndarray
    clip_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.windows)


def split_clips(store, meta: dict) -> tuple[list[int], list[int]]:
    """``(training clip indices, held-out clip indices)`` from the checkpoint's split.

    Held-out clips belong to ``meta["split"]["val_patients"]``; everything else trained the model.
    """
    held_out = set((meta.get("split") or {}).get("val_patients") or [])
    train = [i for i, p in enumerate(store.patients) if p not in held_out]
    val = [i for i, p in enumerate(store.patients) if p in held_out]
    return train, val


def window_starts(num_frames: int, frames: int, windows: int, stride: int = 1) -> list[int]:
    """Start indices of ``windows`` evenly spread windows of ``frames`` frames ``stride`` apart
    (as the evaluation sampler places them)."""
    span = (frames - 1) * stride + 1
    starts = np.linspace(0, max(0, num_frames - span), num=max(1, windows)).round().astype(int)
    return sorted(set(int(s) for s in starts))


def build_window_set(store, clip_indices: list[int], spec: PreprocessSpec, frames: int,
                     windows_per_clip: int, max_clips: int | None = None, seed: int = 0,
                     stride: int = 1) -> WindowSet:
    """Preprocess evenly spread windows of the given clips.

    Args:
        store: a `ClipStore` (sector-masked grayscale uint8 clips).
        clip_indices: which clips to use.
        spec: the model's preprocessing spec.
        frames: window length T.
        windows_per_clip: windows taken per clip.
        max_clips: keep at most this many clips (a seeded, class-stratified-by-order pick).
        seed: seed of that pick.
        stride: the model's frame stride (frames between a window's frames).
    """
    idx = list(clip_indices)
    if max_clips is not None and len(idx) > max_clips:
        rng = np.random.default_rng(seed)
        # Round-robin over classes so a small calibration set still sees every view.
        by_class: dict[int, list[int]] = {}
        for i in rng.permutation(idx):
            by_class.setdefault(int(store.labels[i]), []).append(int(i))
        picked, queues = [], [q for _, q in sorted(by_class.items())]
        while len(picked) < max_clips:
            for q in queues:
                if q and len(picked) < max_clips:
                    picked.append(q.pop())
        idx = sorted(picked)
    windows, labels, clips = [], [], []
    for c in idx:
        clip = store.clips[c]
        n = clip.num_frames
        for s in window_starts(n, frames, windows_per_clip, stride):
            take = np.minimum(s + stride * np.arange(frames), n - 1)  # short clips repeat their last frame
            windows.append(preprocess_frames(clip.frames[take], spec, source=str(clip.source)))  # (T, C, S, S)
            labels.append(int(store.labels[c]))
            clips.append(c)
    if not windows:
        return WindowSet(np.zeros((0,), np.float32), np.zeros((0,), np.int64), np.zeros((0,), np.int64))
    return WindowSet(np.stack(windows).astype(np.float32), np.array(labels, np.int64), np.array(clips, np.int64))


def calibration_set(store, meta: dict, spec: PreprocessSpec, frames: int, calib_clips: int,
                    windows_per_clip: int = 2, where: str = "checkpoint", stride: int = 1) -> WindowSet:
    """Calibration windows from the *training* clips of the checkpoint's dataset.

    Raises:
        ExportError: no training clip is available (an empty calibration set would silently
            give int8 artifacts with meaningless ranges).
    """
    if calib_clips < 1:
        raise ExportError(f"{where}: --calib_clips must be >= 1, got {calib_clips}")
    train, _ = split_clips(store, meta)
    calib = build_window_set(store, train, spec, frames, windows_per_clip, max_clips=calib_clips, stride=stride)
    if len(calib) == 0:
        raise ExportError(f"{where}: the calibration set is empty: the checkpoint's dataset has no "
                             "training clips outside the held-out patients; int8 export needs real clips")
    return calib


def held_out_set(store, meta: dict, spec: PreprocessSpec, frames: int, windows_per_clip: int,
                 max_clips: int | None = None, stride: int = 1) -> WindowSet:
    """Windows of the held-out (validation-patient) clips for the parity report and model card."""
    _, val = split_clips(store, meta)
    return build_window_set(store, val, spec, frames, windows_per_clip, max_clips=max_clips, stride=stride)
