"""`run_training(cfg)`: one training run from config to checkpoint, as a straight line.

    runtime -> data (store, split) -> model (+ stage-1 init, freeze) -> loaders -> optimiser
    -> [resume] -> epochs (train, validate, log, checkpoint) -> final metrics

Single process or ``torchrun --nproc_per_node N -m echoweave train ...`` (DDP; gloo on CPU).
"""
from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler

from echoweave.edge.errors import EchoweaveError
from echoweave.train.config import TrainConfig
from echoweave.train.data.splits import patient_train_val_test_split
from echoweave.train.data.uncertainty_sampling import SegmentBank
from echoweave.train.engine import checkpoint as ckpt
from echoweave.train.engine.data import (
    STORE_FIELDS,
    ClipStore,
    FrameSamples,
    WindowSamples,
    load_store,
    make_transforms,
    store_key,
)
from echoweave.train.engine.derived_cache import DerivedCache
from echoweave.train.engine.distill import Teacher, TeacherFeatureWindows
from echoweave.train.engine.features import FeatureWindows, embed_clips
from echoweave.train.engine.loop import make_optimizer, make_scheduler, predict, train_one_epoch
from echoweave.train.engine.qat import QuantAware
from echoweave.train.engine.runtime import Runtime, seed_everything, setup_runtime, teardown_runtime
from echoweave.train.engine.stages import HeadStage, ImageStage
from echoweave.train.models import build_model, count_parameters, init_from_image_model


@dataclass
class RunResult:
    """What a finished run leaves behind.

    Attributes:
        checkpoint: folder of the final checkpoint.
        metrics: validation metrics of the final epoch (clip-level accuracy etc.).
        model: the trained model (eval mode, on the training device).
        store: the clip store used (reusable by callers such as k-fold).
        val_indices: clip indices of the validation split.
    """

    checkpoint: Path
    metrics: dict
    model: torch.nn.Module
    store: ClipStore
    val_indices: np.ndarray


def split_store(store: ClipStore, seed: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Patient-wise train/validation split of a store's clips (no patient in both)."""
    train, val, _ = patient_train_val_test_split(store.patients, store.labels, val_fraction=val_fraction,
                                                 test_fraction=0.0, seed=seed)
    return np.asarray(train), np.asarray(val)


def _check_classes(expected, got, where: str) -> None:
    if list(expected) != list(got):
        raise EchoweaveError(f"{where}: its classes {list(got)} do not match the dataset's {list(expected)}")


def build_run_model(cfg: TrainConfig, class_names) -> torch.nn.Module:
    """Build the configured model for this dataset, initialised from stage 1 when asked."""
    mcfg = cfg.model.replace(num_classes=len(class_names), input_size=cfg.data.preprocessing.crop)
    model = build_model(mcfg)
    # What a stage needs of the model is a capability it declares, not a model name.
    if cfg.stage == "image" and not hasattr(model, "forward_image"):
        raise EchoweaveError(f"stage 'image' trains one frame at a time; model {mcfg.name!r} has no single-frame "
                             "forward (train it with stage 'temporal')")
    if (cfg.freeze_backbone or cfg.cache_features) and not model.streams_per_frame:
        raise EchoweaveError(f"freeze_backbone/cache_features need a per-frame backbone and window head; model "
                             f"{mcfg.name!r} declares {list(model.methods)} (no embed_frame/classify_window split)")
    if cfg.init_from:
        state, meta, folder = ckpt.load_checkpoint(cfg.init_from)
        _check_classes(class_names, meta.get("class_names", []), str(folder))
        if meta.get("model") == model.cfg.to_dict():
            model.load_state_dict(state)  # the same model: fine-tuning starts from all of it
        elif cfg.qat:
            raise EchoweaveError(f"{folder}: qat fine-tunes a trained model, but this checkpoint holds another "
                                 f"model ({meta.get('model', {}).get('name')}/{meta.get('model', {}).get('backbone')}"
                                 f", not the configured {model.cfg.name}/{model.cfg.backbone} with equal settings)")
        else:
            init_from_image_model(model, state)
    if cfg.freeze_backbone:
        for p in list(model.backbone.parameters()) + list(model.fc0.parameters()):
            p.requires_grad_(False)
    if cfg.qat:
        if cfg.cache_features:
            raise EchoweaveError("qat simulates int8 inside the backbone; cached features skip it (set "
                                 "cache_features: false)")
        model.quant_aware = QuantAware(model)  # hooks only; the state dict keeps its keys
    return model


def _loader(ds, batch_size: int, train: bool, rt: Runtime, cfg: TrainConfig, epoch_seed: int) -> DataLoader:
    # Training data is sharded across DDP ranks; validation runs whole on rank 0.
    sampler = DistributedSampler(ds, shuffle=True, seed=cfg.seed, drop_last=False) if (
        rt.distributed and train) else None
    if sampler is not None:
        sampler.set_epoch(epoch_seed)
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch_seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=train and sampler is None, sampler=sampler,
                      num_workers=cfg.data.num_workers, pin_memory=rt.device.type == "cuda",
                      generator=gen, drop_last=False, persistent_workers=False)


def _datasets(cfg: TrainConfig, store: ClipStore, train_idx, val_idx, model, rt: Runtime, teacher=None):
    """(train dataset, validation dataset) for the stage, with cached features if asked (and, for a
    distilled run on cached features, the teacher's cached features of the same windows)."""
    train_tf, eval_tf = make_transforms(cfg.data)
    frames = cfg.model.frames
    # A spaced sampler with a frame stride is refused by WindowSamples rather than silently
    # trained unstrided: the manifest would promise the edge a stride the model never saw.
    stride = cfg.model.frame_stride
    if cfg.stage == "image":
        return FrameSamples(store, train_idx, train_tf, cfg.data.frames_per_clip, cfg.seed), WindowSamples(
            store, val_idx, eval_tf, frames, cfg.data.sampler, train=False, windows=cfg.data.eval_windows,
            stride=stride)
    bank = _segment_bank(cfg, store, train_idx, rt)
    if cfg.cache_features:
        if not cfg.freeze_backbone:
            raise EchoweaveError("cache_features needs freeze_backbone (features of a training "
                                 "backbone change every step)")
        feats = embed_clips(model, store, eval_tf, rt.device)
        train_cls, extra = FeatureWindows, {}
        if teacher is not None and teacher.mode == "features":
            train_cls, extra = TeacherFeatureWindows, {"teacher_features": teacher.features(store)}
        return (train_cls(store, feats, train_idx, frames, cfg.data.sampler, train=True,
                          repeats=cfg.data.train_windows, seed=cfg.seed, stride=stride, bank=bank, **extra),
                FeatureWindows(store, feats, val_idx, frames, cfg.data.sampler, train=False,
                               windows=cfg.data.eval_windows, stride=stride))
    train_cache, val_cache = _derived_caches(cfg, store, train_idx, val_idx, model, eval_tf, rt)
    return (WindowSamples(store, train_idx, train_tf, frames, cfg.data.sampler, train=True,
                          repeats=cfg.data.train_windows, seed=cfg.seed, stride=stride, derived=train_cache,
                          bank=bank),
            WindowSamples(store, val_idx, eval_tf, frames, cfg.data.sampler, train=False,
                          windows=cfg.data.eval_windows, stride=stride, derived=val_cache))


def _segment_bank(cfg: TrainConfig, store: ClipStore, train_idx, rt: Runtime) -> SegmentBank | None:
    """The uncertainty-aware sampler's bank over the training clips (``data.segment_sampling``)."""
    d = cfg.data
    if not d.segment_sampling:
        return None
    if cfg.optim.loss != "reedl":
        raise EchoweaveError("data.segment_sampling ranks segments by evidential uncertainty: it needs "
                             f"optim.loss: reedl (got {cfg.optim.loss!r})")
    if d.sampler != "consecutive":
        raise EchoweaveError(f"data.segment_sampling centres consecutive windows; data.sampler is {d.sampler!r}")
    if rt.distributed:
        # Every rank would update its own bank from its own batches and plan different epochs.
        raise EchoweaveError("data.segment_sampling is not supported with DDP yet (the bank is per process)")
    return SegmentBank({int(c): store.clips[int(c)].num_frames for c in train_idx}, segment_size=d.segment_size,
                       epsilon=d.segment_epsilon, warmup_epochs=d.segment_warmup_epochs, ema=d.segment_ema,
                       seed=cfg.seed)


def _derived_caches(cfg: TrainConfig, store: ClipStore, train_idx, val_idx, model, eval_tf, rt: Runtime):
    """(train cache, validation cache) of the model's derived inputs, or None where not used.

    Validation windows always use the eval transform; training windows only when augmentation
    is off (augmented frames have their own flow). One cache serves both splits.
    """
    specs = model.derived_inputs() if hasattr(model, "derived_inputs") else []
    if not specs or cfg.data.derived_cache_gb <= 0 or cfg.data.sampler != "consecutive":
        return None, None
    clips = np.concatenate([val_idx, train_idx]) if not cfg.data.augment else np.asarray(val_idx)
    cache = DerivedCache(store, clips, eval_tf, specs, cfg.model.frame_stride, cfg.data.derived_cache_gb * 1e9,
                         show_progress=rt.is_main)
    if rt.is_main:
        print(cache.summary())
    return (None if cfg.data.augment else cache), cache


def _clip_accuracy(probs: np.ndarray, labels: np.ndarray, clips: np.ndarray) -> tuple[float, float]:
    """(window-level accuracy, clip-level accuracy from the mean of a clip's window probabilities)."""
    window_acc = float((probs.argmax(1) == labels).mean())
    uniq = np.unique(clips)
    clip_pred = np.array([probs[clips == c].mean(0).argmax() for c in uniq])
    clip_lab = np.array([labels[clips == c][0] for c in uniq])
    return window_acc, float((clip_pred == clip_lab).mean())


def run_training(cfg: TrainConfig, store: ClipStore | None = None, train_idx=None, val_idx=None,
                 show_progress: bool = True) -> RunResult:
    """Train one model as configured; see the module docstring for the stages.

    Args:
        cfg: the run configuration.
        store: clips already loaded (k-fold reuses one store); loaded from ``cfg.data`` if None.
        train_idx: clip indices to train on (default: a patient-wise split of the store).
        val_idx: clip indices to validate on (held out; default: the split's validation part).
        show_progress: show progress bars.
    """
    rt = setup_runtime(cfg.device, cfg.amp, cfg.threads)
    try:
        return _run(cfg, rt, store, train_idx, val_idx, show_progress)
    finally:
        teardown_runtime(rt)


def check_run_folder(cfg: TrainConfig) -> Path | None:
    """Refuse to train into a folder that already holds checkpoints, unless told what to do.

    Returns:
        The existing newest checkpoint when ``cfg.overwrite`` is set (to be replaced), else None.

    Raises:
        EchoweaveError: ``out`` holds a checkpoint and neither ``resume`` nor ``overwrite`` is set.
    """
    existing = ckpt.existing_run(cfg.out)
    if existing is None or cfg.resume:
        return None
    if not cfg.overwrite:
        raise EchoweaveError(f"{cfg.out}: already holds a run (checkpoint {existing.name}); pass --resume "
                             "to continue it or --overwrite to replace it, or choose another --out")
    return existing


def _record_store_source(cfg: TrainConfig, store: ClipStore) -> TrainConfig:
    """The config with its dataset fields taken from the store actually trained on.

    A caller may hand over a store loaded from other settings (k-fold, experiments); the
    checkpoint must name the clips the model saw, or export and evaluate would regenerate
    another dataset (and find none of the held-out patients in it).
    """
    if store.source is None or store_key(store.source) == store_key(cfg.data):
        return cfg
    data = dataclasses.replace(cfg.data, **{name: getattr(store.source, name) for name in STORE_FIELDS})
    return dataclasses.replace(cfg, data=data)


def _finished_run(cfg: TrainConfig, out: Path, store: ClipStore, model, val_idx) -> RunResult | None:
    """The run in ``out`` loaded into ``model`` when its last checkpoint has every epoch, else None."""
    folder = ckpt.find_checkpoint(out)
    if folder is None or ckpt.checkpoint_epoch(folder) < cfg.optim.epochs:
        return None  # an incomplete run: the resume path loads its weights once
    state, meta, folder = ckpt.load_checkpoint(folder)
    _check_classes(store.class_names, meta["class_names"], str(folder))
    model.load_state_dict(state)
    model.eval()
    print(f"{folder}: complete ({meta['epoch']} of {cfg.optim.epochs} epochs), loaded without training")
    return RunResult(checkpoint=folder, metrics=dict(meta.get("metrics", {})), model=model, store=store,
                     val_indices=np.asarray(val_idx))


def _run(cfg, rt, store, train_idx, val_idx, show_progress) -> RunResult:
    out = Path(cfg.out)
    replacing = check_run_folder(cfg)  # before any work: a refused run costs nothing
    if rt.is_main:
        ckpt.clean_stale_temp(out)
    seed_everything(cfg.seed)
    store = store if store is not None else load_store(cfg.data, show_progress and rt.is_main)
    cfg = _record_store_source(cfg, store)
    if train_idx is None or val_idx is None:
        train_idx, val_idx = split_store(store, cfg.seed, cfg.data.val_fraction)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise EchoweaveError(f"empty split: {len(train_idx)} training and {len(val_idx)} validation clips")
    model = build_run_model(cfg, store.class_names).to(rt.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.resume and (done := _finished_run(cfg, out, store, model, val_idx)) is not None:
        # A complete run is only reloaded: building its datasets (embedding every clip for cached
        # features, the teacher's features) would be wasted work.
        return done
    # Knowledge distillation: a frozen teacher beside the student, never inside it (engine/distill.py).
    teacher = Teacher(cfg, store.class_names, rt.device, model) if cfg.distill is not None else None
    train_ds, val_ds = _datasets(cfg, store, train_idx, val_idx, model, rt, teacher)
    net = ImageStage(model) if cfg.stage == "image" else HeadStage(model) if cfg.cache_features else model
    if cfg.compile:
        net = torch.compile(net)
    if rt.distributed:
        net = DDP(net, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    bank = getattr(train_ds, "bank", None)  # uncertainty-aware sampling (data.segment_sampling)
    steps = len(_loader(train_ds, cfg.optim.batch_size, True, rt, cfg, 0))
    optimizer = make_optimizer(net, cfg.optim)
    scheduler = make_scheduler(optimizer, cfg.optim, steps)

    start_epoch, history = 0, []
    if cfg.resume and (folder := ckpt.find_checkpoint(out)) is not None:
        state, meta, folder = ckpt.load_checkpoint(folder)
        _check_classes(store.class_names, meta["class_names"], str(folder))
        model.load_state_dict(state)
        if teacher is not None:
            teacher.check_resume(meta, folder)
        ts = ckpt.load_train_state(folder)
        if ts is None:
            raise EchoweaveError(f"{folder}: no train_state.pt beside the weights; cannot resume")
        optimizer.load_state_dict(ts["optimizer"])
        scheduler.load_state_dict(ts["scheduler"])
        if bank is not None:
            if "segment_bank" not in ts:
                raise EchoweaveError(f"{folder}: the run samples by segment uncertainty but its train_state.pt "
                                     "holds no segment bank; cannot resume it exactly")
            bank.load_state_dict(ts["segment_bank"])
        start_epoch, history = int(meta["epoch"]), list(ts.get("history", []))
        if rt.is_main:
            print(f"resuming from {folder} (epoch {start_epoch})")

    writer = None
    if rt.is_main:
        from torch.utils.tensorboard import SummaryWriter

        out.mkdir(parents=True, exist_ok=True)
        ckpt.write_json_atomic(out / "config.json", cfg.to_dict())
        writer = SummaryWriter(log_dir=str(out / "tb"))
        if cfg.qat:
            print(model.quant_aware.summary())
        print(f"{cfg.model.name}/{cfg.model.backbone}: {count_parameters(model):,} parameters; "
              f"{len(train_idx)} training clips, {len(val_idx)} validation clips, device {rt.device}")

    metrics = history[-1] if history else {}
    folder = ckpt.find_checkpoint(out) if start_epoch else None
    for epoch in range(start_epoch, cfg.optim.epochs):
        # Seed per epoch (not once per run): a resumed run draws exactly what the original would have.
        seed_everything(cfg.seed * 1_000 + epoch)
        if hasattr(train_ds, "set_epoch"):
            train_ds.set_epoch(epoch)
        loader = _loader(train_ds, cfg.optim.batch_size, True, rt, cfg, epoch)
        train_m = train_one_epoch(net, loader, optimizer, scheduler, rt, cfg.optim, epoch + 1,
                                  cfg.channels_last, show_progress, bank=bank, teacher=teacher)
        metrics = {"epoch": epoch + 1, **{f"train_{k}": v for k, v in train_m.items()}}
        if rt.is_main:
            eval_net = net.module if rt.distributed else net
            if cfg.stage == "image":
                eval_net = model  # validation of the image model: mean voting over windows
            probs, labels, clips = predict(eval_net, _loader(val_ds, cfg.optim.batch_size, False, rt, cfg, 0), rt,
                                           cfg.channels_last)
            metrics["val_window_accuracy"], metrics["val_clip_accuracy"] = _clip_accuracy(probs, labels, clips)
            history.append(metrics)
            for k, v in metrics.items():
                if k != "epoch":
                    writer.add_scalar(k.replace("_", "/", 1), v, epoch + 1)
            meta = {"model": model.cfg.to_dict(), "class_names": list(store.class_names),
                    "preprocessing": cfg.data.preprocessing.to_dict(), "stage": cfg.stage,
                    "train": cfg.to_dict(), "metrics": metrics,
                    "split": {"val_patients": sorted(set(store.patients[val_idx].tolist())),
                              "val_clips": len(val_idx), "train_clips": len(train_idx)},
                    "skipped": store.skipped,
                    # The teacher is not saved with the student: its folder and weights' sha256 are.
                    **({"distill": teacher.record} if teacher is not None else {})}
            if replacing is not None:  # --overwrite: old checkpoints go just before the first new save
                shutil.rmtree(out / "checkpoints", ignore_errors=True)
                replacing = None
            folder = ckpt.save_checkpoint(out, epoch + 1, model, meta,
                                          {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                           "history": history,
                                           **({"segment_bank": bank.state_dict()} if bank is not None else {})},
                                          keep=cfg.keep_checkpoints)
            if show_progress:
                print(f"epoch {epoch + 1}/{cfg.optim.epochs}: loss {train_m['loss']:.4f} "
                      f"train acc {train_m['accuracy']:.3f} val clip acc {metrics['val_clip_accuracy']:.3f}")
        if rt.distributed:
            torch.distributed.barrier()
    if writer is not None:
        writer.close()
        ckpt.write_json_atomic(out / "metrics.json", {"final": metrics, "history": history})
    model.eval()
    return RunResult(checkpoint=folder if folder else out, metrics=metrics, model=model, store=store,
                     val_indices=np.asarray(val_idx))


def config_from_file(path: str | Path) -> TrainConfig:
    """Load a YAML training config (the shipped ones live in ``train/configs``)."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    return TrainConfig.from_dict(data)


__all__ = ["RunResult", "run_training", "build_run_model", "split_store", "config_from_file"]
