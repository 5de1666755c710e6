"""From a `DataConfig` to torch datasets: load clips once, mask them, then draw samples.

`ClipStore` holds every clip of a dataset in memory as masked ``uint8 (T, H, W)`` frames with
their labels and patient ids (echo datasets are small: NED is ~1k one-second clips). Datasets
only hold indices into the store:

- `FrameSamples`: stage 1, every frame of every clip is a sample (the paper's image training).
- `WindowSamples`: windows of T frames, drawn fresh each epoch in training (consecutive or
  spaced, TSN style) and at fixed, evenly spread positions in evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from echoweave.edge.clip import Clip
from echoweave.edge.errors import EchoweaveError
from echoweave.edge.sector import apply_sector, estimate_sector
from echoweave.edge.views import CLASS_SETS
from echoweave.train.config import DataConfig
from echoweave.train.data.augment import AugmentConfig, train_transform
from echoweave.train.data.samplers import sample_spaced, sample_stride
from echoweave.train.data.transforms import eval_transform, to_video
from echoweave.train.data.uncertainty_sampling import SegmentBank, window_around
from echoweave.train.engine.derived_cache import DerivedCache


@dataclass
class ClipStore:
    """All clips of a dataset, prepared for sampling.

    Attributes:
        clips: grayscale, sector-masked ``uint8 (T, H, W)`` clips.
        class_names: class name per class id.
        labels: ``(N,)`` class ids.
        patients: ``(N,)`` patient ids (strings).
        skipped: what the reader skipped and why (counts per reason).
        source: the data config the store was loaded from (None when built by hand); a run
            records it so the checkpoint names the clips it really saw.
    """

    clips: list[Clip]
    class_names: tuple[str, ...]
    labels: np.ndarray = field(init=False)
    patients: np.ndarray = field(init=False)
    skipped: dict = field(default_factory=dict)
    source: DataConfig | None = None

    def __post_init__(self):
        if not self.clips:
            raise EchoweaveError("the dataset holds no labelled clips")
        unlabelled = [c.source for c in self.clips if c.label is None]
        if unlabelled:
            raise EchoweaveError(f"{len(unlabelled)} clips have no label (first: {unlabelled[0]}); "
                                 "training needs a labelled layout (NED, EV9V or the phantom)")
        self.labels = np.array([c.label for c in self.clips], dtype=np.int64)
        self.patients = np.array([c.patient_id for c in self.clips])

    def __len__(self) -> int:
        return len(self.clips)


def prepare_clip(clip: Clip, cfg: DataConfig) -> Clip:
    """Grayscale and sector mask (estimated once per clip, as the edge does).

    Clips keep their full frame rate: a window's frame stride is the model's
    (``ModelConfig.frame_stride``), applied when windows are drawn, so one store serves models
    with different strides.
    """
    clip = clip.gray()
    frames = clip.frames
    if cfg.preprocessing.sector_mask:
        frames = apply_sector(frames, estimate_sector(frames))
    return Clip(np.ascontiguousarray(frames), clip.fps, clip.patient_id, clip.label,
                clip.source, clip.view, dict(clip.meta))


#: DataConfig fields that decide which clips a store holds and how they are prepared; the rest
#: (sampling, augmentation, loader settings) only decide how samples are drawn from it.
STORE_FIELDS = ("path", "class_set", "preprocessing", "phantom_patients", "phantom_clips_per_view",
                "phantom_frames", "phantom_size", "phantom_difficulty", "phantom_seed", "phantom_degraded")


def store_key(cfg: DataConfig) -> tuple:
    """A hashable key equal for two data configs exactly when `load_store` gives the same store."""
    return tuple((name, repr(getattr(cfg, name))) for name in STORE_FIELDS)


def load_store(cfg: DataConfig, show_progress: bool = True) -> ClipStore:
    """Read (or generate) the dataset named by ``cfg.path`` and prepare every clip."""
    if cfg.class_set not in CLASS_SETS:
        raise EchoweaveError(f"unknown class set {cfg.class_set!r}; known: {sorted(CLASS_SETS)}")
    if cfg.path == "phantom":
        from echoweave.train.data.phantom import PhantomConfig, generate_dataset

        pcfg = PhantomConfig(num_patients=cfg.phantom_patients, clips_per_view=cfg.phantom_clips_per_view,
                             num_frames=cfg.phantom_frames, height=cfg.phantom_size, width=cfg.phantom_size,
                             difficulty=cfg.phantom_difficulty, seed=cfg.phantom_seed, degraded=cfg.phantom_degraded,
                             class_set=CLASS_SETS[cfg.class_set])
        raw, class_names, skipped = list(generate_dataset(pcfg)), CLASS_SETS[cfg.class_set], {}
    else:
        from echoweave.train.data.catalog import scan_dataset

        catalog = scan_dataset(cfg.path, class_set=cfg.class_set)
        refs = catalog.refs
        raw = [ref.load() for ref in tqdm(refs, desc="reading clips", disable=not show_progress)]
        class_names, skipped = tuple(catalog.class_names), dict(catalog.skipped)
    clips = [prepare_clip(c, cfg) for c in tqdm(raw, desc="masking", leave=False, disable=not show_progress)]
    return ClipStore(clips, tuple(class_names), skipped=skipped, source=cfg)


def _as_video(frames: np.ndarray) -> torch.Tensor:
    return to_video(frames[:, None] if frames.ndim == 3 else frames)  # (T, 1, H, W) uint8


class FrameSamples(Dataset):
    """Stage 1: frames of the given clips as samples ``x (1, H, W)``.

    With ``per_clip=0`` every frame of every clip is a sample (the paper). With ``per_clip=n``
    each epoch draws ``n`` frames per clip afresh (seeded by ``(seed, epoch)``): the same frames
    seen over a few epochs at a fraction of the cost, for CPU presets.
    """

    def __init__(self, store: ClipStore, clip_indices, transform, per_clip: int = 0, seed: int = 0):
        self.store, self.transform, self.per_clip, self.seed = store, transform, per_clip, seed
        self.clip_indices = [int(c) for c in clip_indices]
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Choose this epoch's frames (only matters with ``per_clip > 0``)."""
        rng = np.random.default_rng((self.seed, epoch))
        self.index = []
        for c in self.clip_indices:
            n = self.store.clips[c].num_frames
            frames = range(n) if self.per_clip <= 0 or self.per_clip >= n else np.sort(
                rng.choice(n, size=self.per_clip, replace=False))
            self.index += [(c, int(f)) for f in frames]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        c, f = self.index[i]
        frame = self.store.clips[c].frames[f : f + 1]  # (1, H, W)
        x = self.transform(_as_video(frame))[0]  # (1, H, W) float
        return {"x": x, "label": int(self.store.labels[c]), "clip": c}


class WindowSamples(Dataset):
    """Windows of ``frames`` frames: ``x (T, 1, H, W)``.

    In training (``train=True``) each item draws a fresh window from its clip with a generator
    seeded by ``(seed, epoch, item)``, so an epoch is reproducible and a resumed run sees the same
    windows. In evaluation the windows sit at fixed, evenly spread positions: ``windows`` per
    clip for consecutive sampling, one centred TSN window for spaced sampling. With
    ``stride > 1`` a consecutive window takes every ``stride``-th frame (the model's
    ``frame_stride``); spaced windows have no stride. With a `DerivedCache` (models with a
    derived input, deterministic ``transform``) an item also holds ``derived``: the window's
    derived inputs, sliced from the per-clip cache.
    """

    def __init__(self, store: ClipStore, clip_indices, transform, frames: int, sampler: str,
                 train: bool, windows: int = 1, repeats: int = 1, seed: int = 0, stride: int = 1,
                 derived: "DerivedCache | None" = None, bank: "SegmentBank | None" = None):
        if sampler not in ("consecutive", "spaced"):
            raise EchoweaveError(f"unknown sampler {sampler!r}; use consecutive or spaced")
        if stride < 1 or (stride > 1 and sampler == "spaced"):
            raise EchoweaveError(f"frame stride {stride} needs the consecutive sampler and a value >= 1 "
                                 f"(got sampler {sampler!r}); spaced windows already spread over the clip")
        self.store, self.transform, self.frames, self.stride = store, transform, frames, stride
        self.sampler, self.train, self.seed, self.epoch = sampler, train, seed, 0
        self.derived = derived
        if bank is not None and (not train or sampler != "consecutive"):
            raise EchoweaveError("uncertainty-aware segment sampling draws training windows of the consecutive sampler")
        self.bank, self.centres = bank, None
        clip_indices = [int(c) for c in clip_indices]
        if train:
            self.items = [(c, None) for c in clip_indices for _ in range(repeats)]
        else:
            self.items = [(c, idx) for c in clip_indices for idx in self._eval_windows(c, windows)]
        if bank is not None:
            self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw different training windows each epoch (call before iterating). With a segment
        bank, the epoch's window centres are planned from the bank as it stands now."""
        self.epoch = epoch
        if self.bank is not None:
            self.centres = self.bank.plan_epoch([c for c, _ in self.items], epoch)

    def _eval_windows(self, c: int, windows: int) -> list[np.ndarray]:
        n = self.store.clips[c].num_frames
        if self.sampler == "spaced":
            return [sample_spaced(n, self.frames)]
        span = (self.frames - 1) * self.stride + 1
        starts = np.unique(np.linspace(0, max(0, n - span), num=max(1, windows)).round().astype(int))
        # A clip shorter than the span is padded by repeating its last frame (short="repeat").
        return [np.minimum(s + self.stride * np.arange(self.frames), n - 1) for s in starts]

    def _draw(self, c: int, i: int) -> np.ndarray:
        """Training window of item ``i`` (clip ``c``) for the current epoch."""
        n = self.store.clips[c].num_frames
        if self.bank is not None:
            return window_around(int(self.centres[i]), self.frames, self.stride, n)
        rng = np.random.default_rng((self.seed, self.epoch, i))
        if self.sampler == "spaced":
            return sample_spaced(n, self.frames, rng=rng)
        return sample_stride(n, self.frames, self.stride, rng=rng)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        c, idx = self.items[i]
        if idx is None:
            idx = self._draw(c, i)
        x = self.transform(_as_video(self.store.clips[c].frames[idx]))  # (T, 1, H, W) float
        item = {"x": x, "label": int(self.store.labels[c]), "clip": c, **self._centre(i)}
        if self.derived is not None:
            item["derived"] = self.derived.window_inputs(c, idx, x)
        return item


    def _centre(self, i: int) -> dict:
        """``{"centre": frame}`` of a training item drawn from the segment bank (for its update)."""
        return {} if self.bank is None else {"centre": int(self.centres[i])}


def make_transforms(cfg: DataConfig):
    """(train transform, eval transform) for the config's preprocessing and augmentation."""
    ev = eval_transform(cfg.preprocessing)
    if not cfg.augment:
        return ev, ev
    return train_transform(cfg.preprocessing, AugmentConfig(rotation=cfg.rotation)), ev
