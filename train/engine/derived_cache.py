"""Derived inputs (optical flow, frame differences) computed once per clip for training.

A model with a derived input (`VideoModel.derived_inputs`, e.g. the two-stream network's
Farneback flow) computes it from the preprocessed window before every ``forward``, exactly as the
edge does. In training that is the same window over and over: the flow of a clip's frame pairs
costs ~1 ms a pair at 64 px and ~15 ms at 224 px on one CPU core, so a GPU would wait for the
data loader. `DerivedCache` computes, once per clip, every frame pair a window at the model's
frame stride can contain, ``(i, min(i + stride, n - 1))``, with the same function on the same
preprocessed frames, and a window's input is a slice of it: the numbers are identical to
computing it on the window (tests/test_derived_cache.py holds them equal).

The cache is valid only for deterministic preprocessing (the eval transform): training windows
use it when augmentation is off (``data.augment: false``, as the seed trains its flow stream);
with augmentation each window's flow is computed from its augmented frames. Only *pairwise*
kinds (`echoweave.edge.derived_inputs.is_pairwise`) can be sliced; others are computed per
window. Memory is bounded by ``budget_bytes`` (clips past it are computed per window, and the
summary says how many were cached).

    cache = DerivedCache(store, clip_indices, eval_tf, model.derived_inputs(), stride=2)
    flow, = cache.window_inputs(c, idx, x)  # idx: the window's frame indices, x its pixels
"""
from __future__ import annotations

import time

import numpy as np
import torch
from tqdm.auto import tqdm

from echoweave.edge.derived_inputs import derive, derive_batch, is_pairwise
from echoweave.train.data.transforms import to_video


def _frame_pairs(n: int, stride: int) -> np.ndarray:
    """``(n,)`` index of the second frame of each cached pair: ``min(i + stride, n - 1)``."""
    return np.minimum(np.arange(n) + stride, n - 1)


class DerivedCache:
    """Per-clip derived inputs of a model, for windows at one frame stride.

    Args:
        store: the `ClipStore` (``uint8 (T, H, W)`` frames per clip).
        clip_indices: the clips to cache.
        transform: the deterministic preprocessing (video ``(T, 1, H, W)`` uint8 -> float).
        specs: the model's `derived_inputs()` entries (``{"name", "derive", ...}``).
        stride: the model's frame stride.
        budget_bytes: the most memory the cache may hold; later clips are not cached.
        show_progress: show a progress bar.

    Attributes:
        seconds: time spent building the cache.
        cached_bytes: memory held.
    """

    def __init__(self, store, clip_indices, transform, specs: list[dict], stride: int,
                 budget_bytes: float = 4e9, show_progress: bool = True):
        self.specs = [dict(s["derive"]) for s in specs]
        self.stride = int(stride)
        self.pairwise = [is_pairwise(s) for s in self.specs]
        self.clips: dict[int, list[np.ndarray | None]] = {}
        self.total, self.cached_bytes = 0, 0
        t0 = time.perf_counter()
        todo = [int(c) for c in clip_indices]
        self.total = len(todo)
        if any(self.pairwise):
            for c in tqdm(todo, desc="derived inputs per clip", leave=False, disable=not show_progress):
                frames = store.clips[c].frames
                # Whole clip through the eval transform: per-frame geometry, so frame t of it equals
                # frame t of any window's transform (checked by the tests).
                pixels = transform(to_video(frames)).numpy()  # (n, 1, S, S) float32
                second = _frame_pairs(len(pixels), self.stride)
                entry = []
                for spec, pair in zip(self.specs, self.pairwise):
                    entry.append(np.concatenate([derive(spec, pixels[[i, j]]) for i, j in enumerate(second)])
                                 if pair else None)  # (n, ...): pair (i, second[i]) at row i
                size = sum(a.nbytes for a in entry if a is not None)
                if self.cached_bytes + size > budget_bytes:
                    break
                self.clips[c] = entry
                self.cached_bytes += size
        self.seconds = time.perf_counter() - t0

    def summary(self) -> str:
        """One line: what was cached, its memory and build time."""
        kinds = ", ".join(s["kind"] for s in self.specs)
        return (f"derived inputs ({kinds}) cached per clip for {len(self.clips)}/{self.total} clips at frame "
                f"stride {self.stride}: {self.cached_bytes / 1e6:.1f} MB in {self.seconds:.1f} s")

    def window_inputs(self, c: int, idx: np.ndarray, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The derived inputs of clip ``c``'s window at frame indices ``idx``.

        Slices the cache when the clip is cached and the window is a chain of the cached pairs
        (``idx[t + 1] == min(idx[t] + stride, n - 1)``); otherwise computes from ``pixels``
        (the window's preprocessed ``(T, C, S, S)`` frames), exactly as the model would.
        """
        idx = np.asarray(idx)
        entry = self.clips.get(int(c))
        n = None if entry is None else len(next(a for a in entry if a is not None))
        chained = n is not None and np.array_equal(idx[1:], _frame_pairs(n, self.stride)[idx[:-1]])
        out = []
        for k, spec in enumerate(self.specs):
            if chained and entry[k] is not None:
                out.append(torch.from_numpy(entry[k][idx[:-1]]))
            else:
                out.append(torch.from_numpy(derive_batch(spec, pixels.numpy()[None])[0]))
        return tuple(out)
