"""Typed training configuration (jsonargparse turns these into `echoweave train --help`).

Light module: no torch at import time, so the CLI can describe itself in an edge-only install.
The resolved config is saved in every run folder (`config.json`), as litgpt does.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from echoweave.edge.preprocess import PreprocessSpec
from echoweave.train.models.config import ModelConfig


@dataclass
class DataConfig:
    """Where clips come from and how windows are drawn from them.

    Attributes:
        path: Dataset root (NED or EV9V layout, a folder of DICOM or video files), or
            ``phantom`` to generate the synthetic echo phantom in memory.
        class_set: Class names to train on (``ned12``, ``ned16``, or ``ev9v`` for EV9V's nine
            views; the phantom draws NED views only).
        sampler: How a training window is drawn from a clip: ``consecutive`` (1 segment x T)
            or ``spaced`` (T segments x 1, TSN style).
        preprocessing: The deterministic preprocessing spec (grayscale, sector mask, resize,
            crop, scale) that travels with the model to the manifest and the app. The model's
            ``input_size`` follows ``preprocessing.crop``.
        augment: Apply clip-consistent augmentation in training.
        rotation: Maximum augmentation rotation in degrees.
        val_fraction: Share of patients held out for validation when no split is given.
        num_workers: DataLoader worker processes (0 = load in the main process).
        frames_per_clip: Stage 1 only: frames drawn per clip and epoch (fresh ones each epoch);
            0 uses every frame of every clip, as the paper does.
        train_windows: Training windows drawn per clip and epoch in stage 2 (each at a fresh
            random position).
        eval_windows: Windows per clip at evaluation (sliding, evenly spread); their mean
            probability is the clip (video-level) prediction.
        phantom_patients: Synthetic patients when ``path`` is ``phantom``.
        phantom_clips_per_view: Clips per view and patient when ``path`` is ``phantom``.
        phantom_frames: Frames per synthetic clip.
        phantom_size: Synthetic frame side in pixels.
        phantom_difficulty: Phantom difficulty in [0, 1].
        phantom_seed: Seed of the phantom generator (independent of the training seed).
        phantom_degraded: Share of phantom clips rendered at poor quality (dropped frames, heavy
            noise, acoustic shadows; each clip's ``meta["quality"]`` says what), so that an
            uncertainty estimate has something to detect. 0 = every clip clean.
        segment_sampling: Uncertainty-aware training windows (EV9V's STFM,
            `echoweave.train.data.uncertainty_sampling`): each training clip is cut into
            segments, a bank keeps each segment's moving average of 1 - evidential uncertainty
            and windows are centred in the most confident segment, epsilon-greedily. Needs the
            ``reedl`` loss and the consecutive sampler; the bank is saved with the checkpoint.
        segment_size: Frames per segment (20).
        segment_epsilon: Exploration rate after the warm-up (0.2).
        segment_warmup_epochs: Epochs in which every draw explores (5).
        segment_ema: Weight of a new confidence in a segment's moving average (0.3).
        derived_cache_gb: Memory (GB) for derived inputs (e.g. the two-stream network's optical
            flow) computed once per clip instead of once per window; used for validation windows
            and, when ``augment`` is off, training windows. 0 computes them per window.
    """

    path: str = "phantom"
    class_set: str = "ned12"
    sampler: Literal["consecutive", "spaced"] = "consecutive"
    preprocessing: PreprocessSpec = field(default_factory=PreprocessSpec)
    augment: bool = True
    rotation: float = 25.0
    val_fraction: float = 0.2
    num_workers: int = 0
    frames_per_clip: int = 0
    train_windows: int = 1
    eval_windows: int = 4
    phantom_patients: int = 10
    phantom_clips_per_view: int = 2
    phantom_frames: int = 32
    phantom_size: int = 112
    phantom_difficulty: float = 0.3
    phantom_seed: int = 0
    phantom_degraded: float = 0.0
    segment_sampling: bool = False
    segment_size: int = 20
    segment_epsilon: float = 0.2
    segment_warmup_epochs: int = 5
    segment_ema: float = 0.3
    derived_cache_gb: float = 4.0


#: Training losses (`echoweave.train.engine.losses.training_loss`).
LOSSES = ("cross_entropy", "reedl")
#: Learning-rate schedules (`echoweave.train.engine.loop.make_scheduler`).
SCHEDULES = ("one_cycle", "warmup_cosine")


@dataclass
class OptimConfig:
    """Optimiser and one-cycle schedule (the paper: SGD in stage 1, Adam in stage 2).

    Attributes:
        optimizer: ``sgd`` (stage 1 of the paper), ``adam`` (stage 2 of the paper: Adam with
            its "momentum" as beta1 and L2 regularisation as weight decay) or ``adamw``
            (decoupled weight decay).
        epochs: Passes over the training set.
        batch_size: Samples per step (per process under DDP).
        lr: Peak learning rate (the one-cycle maximum, or the rate the warm-up reaches).
        momentum: SGD momentum, or Adam's beta1 (the paper gives 0.75 for both stages). The
            one-cycle schedule keeps it fixed rather than cycling it.
        beta2: Adam's beta2 (ignored by SGD).
        weight_decay: L2 regularisation (SGD, Adam) or decoupled weight decay (AdamW).
        label_smoothing: Cross-entropy label smoothing.
        grad_clip: Clip the gradient norm to this value (0 = off).
        loss: ``cross_entropy`` (the default) or ``reedl``: the evidential loss of EV9V's STFM
            (bgx666/stfm ``losses.py``): squared error between the one-hot target and the relaxed
            Dirichlet probability of the evidence ``softplus(logits)``
            (`echoweave.train.engine.losses.reedl_loss`).
        evidence_prior: ``reedl``: evidence every class starts with (the reference's ``lamb2``,
            0.8); the Dirichlet parameters are ``softplus(logits) + evidence_prior``. The edge's
            evidential fusion of key clips uses the same value.
        evidence_relax: ``reedl``: weight of the other classes' evidence in the relaxed
            probability (the reference's ``lamb1``, 1.0: the plain Dirichlet mean).
        schedule: Learning-rate schedule, stepped per batch: ``one_cycle`` (the default) or
            ``warmup_cosine`` (EV9V's STFM recipe, bgx666/stfm ``trainSelective.py``: a linear
            warm-up from ``warmup_start * lr`` to ``lr`` over ``warmup_epochs``, then a cosine
            decay to 0 at the last epoch).
        warmup_epochs: ``warmup_cosine``: epochs of linear warm-up (5 in the reference); must be
            below ``epochs``.
        warmup_start: ``warmup_cosine``: the first learning rate as a fraction of ``lr`` (0.1).
    """

    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    epochs: int = 50
    batch_size: int = 16
    lr: float = 0.08
    momentum: float = 0.75
    beta2: float = 0.999
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    grad_clip: float = 0.0
    loss: Literal["cross_entropy", "reedl"] = "cross_entropy"
    evidence_prior: float = 0.8
    evidence_relax: float = 1.0
    schedule: Literal["one_cycle", "warmup_cosine"] = "one_cycle"
    warmup_epochs: int = 5
    warmup_start: float = 0.1

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"OptimConfig.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.schedule == "warmup_cosine" and not (0 <= self.warmup_epochs < self.epochs
                                                     and 0 < self.warmup_start <= 1):
            raise ValueError(f"OptimConfig: schedule warmup_cosine needs 0 <= warmup_epochs < epochs and warmup_start "
                             f"in (0, 1]; got warmup_epochs={self.warmup_epochs!r}, epochs={self.epochs!r}, "
                             f"warmup_start={self.warmup_start!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"OptimConfig.loss must be one of {LOSSES}, got {self.loss!r}")
        if self.evidence_prior <= 0 or self.evidence_relax < 0:
            raise ValueError(f"OptimConfig.evidence_prior must be > 0 and evidence_relax >= 0, got "
                             f"{self.evidence_prior!r} and {self.evidence_relax!r}")
        if self.loss != "cross_entropy" and self.label_smoothing:
            raise ValueError(f"OptimConfig.label_smoothing applies to cross_entropy only; loss {self.loss!r} "
                             f"has none (got label_smoothing={self.label_smoothing!r})")


@dataclass
class DistillConfig:
    """Knowledge distillation from a trained teacher (`echoweave.train.engine.distill`).

    The loss becomes ``alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) +
    (1 - alpha) * CE(student, label)`` (Hinton et al., 2015), the teacher run in eval mode under
    no_grad on the same batch. The teacher is never saved with the student; its checkpoint folder
    and the sha256 of its weights go into the student's ``checkpoint.json`` (``distill``).

    Attributes:
        teacher: The teacher's run folder, ``checkpoints/`` or epoch folder. Inside a recipe, the
            name of another stage or variant of the same run (``stage1``, ``tfw_contrast_fr2``):
            it resolves to that run's folder (in a K-fold, of the same fold). An image-stage
            student learns from an image model (the teacher's stage 1: a window model has no
            single-frame output); a temporal student from a window model on the same window
            (same ``frames`` and ``frame_stride``).
        temperature: T, the softmax temperature of both distributions (> 0).
        alpha: Weight of the distillation term in [0, 1] (1 = teacher only, 0 = labels only).
    """

    teacher: str = ""
    temperature: float = 4.0
    alpha: float = 0.9

    def __post_init__(self) -> None:
        if not self.teacher:
            raise ValueError("DistillConfig.teacher is required: a checkpoint folder, or inside a recipe the "
                             "name of another stage or variant")
        if isinstance(self.temperature, bool) or not self.temperature > 0:
            raise ValueError(f"DistillConfig.temperature must be > 0, got {self.temperature!r}")
        if isinstance(self.alpha, bool) or not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"DistillConfig.alpha must be in [0, 1], got {self.alpha!r}")


@dataclass
class TrainConfig:
    """One training run (stage 1 image model or stage 2 temporal model).

    Attributes:
        out: Run folder: checkpoints, TensorBoard logs and the resolved config go here.
        stage: ``image`` trains on single frames (every frame a sample); ``temporal`` trains
            on windows of T frames.
        model: The model to build (see ``echoweave models``).
        data: Dataset and sampling.
        optim: Optimiser and schedule.
        init_from: Stage-1 run folder or checkpoint whose backbone and fc0 initialise this
            model (stage 2; the backbone keeps training unless ``freeze_backbone``). A
            checkpoint of the same model (equal model config) initialises every weight instead
            (fine-tuning, e.g. a ``qat`` stage).
        freeze_backbone: Keep the per-frame CNN fixed in stage 2 (fast CPU experiments; the
            paper fine-tunes it).
        cache_features: With a frozen backbone, compute per-frame features once and train the
            head on them (no augmentation in stage 2 then).
        seed: Seeds data order, augmentation and initialisation.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        amp: Mixed precision on CUDA: ``bf16`` autocast or ``none``.
        channels_last: Use channels-last memory format (faster convolutions on GPUs).
        compile: Wrap the model in ``torch.compile``.
        resume: Continue from the last complete checkpoint in ``out``.
        overwrite: Replace a finished or interrupted run already in ``out`` (its checkpoints are
            deleted when the first new one is saved). Without this or ``resume`` a run folder
            that holds checkpoints is refused.
        keep_checkpoints: Complete epoch checkpoints to keep.
        threads: CPU threads for torch (0 = leave torch's default).
        distill: Knowledge distillation from a teacher checkpoint (`DistillConfig`), or None.
        qat: Quantization-aware fine-tuning: train through simulated int8 rounding of weights
            and backbone activations (`echoweave.train.engine.qat`), so the int8 export keeps
            the fp32 model's decisions. Needs a trainable backbone (no ``cache_features``);
            usually a short stage ``init_from`` the finished model (same model config: every
            weight is copied).
    """

    out: str = "runs/tfw"
    stage: Literal["image", "temporal"] = "temporal"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    init_from: str | None = None
    freeze_backbone: bool = False
    cache_features: bool = False
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["bf16", "none"] = "bf16"
    channels_last: bool = True
    compile: bool = False
    resume: bool = False
    overwrite: bool = False
    keep_checkpoints: int = 2
    threads: int = 0
    distill: DistillConfig | None = None
    qat: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-ready dict."""
        out = dataclasses.asdict(self)
        out["model"] = self.model.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Rebuild from `to_dict()` output (unknown keys are an error)."""
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {unknown}; known: {sorted(known)}")
        model = ModelConfig.from_dict(data.pop("model", {}))
        data_values = dict(data.pop("data", {}))
        if "stride" in data_values:
            # data.stride was applied only when a store was loaded, so k-fold variants sharing a
            # store silently ignored it; the stride is now the model's and travels to the manifest.
            raise ValueError("data.stride has moved to model.frame_stride (the window's frame stride "
                             "travels with the model to the manifest and the edge runtime)")
        spec = PreprocessSpec.from_dict(data_values.pop("preprocessing", {}))
        data_cfg = _strict(DataConfig, {**data_values, "preprocessing": spec})
        optim = _strict(OptimConfig, data.pop("optim", {}))
        distill = data.pop("distill", None)
        distill = _strict(DistillConfig, distill) if isinstance(distill, dict) else distill
        return cls(model=model, data=data_cfg, optim=optim, distill=distill, **data)


def _strict(cls, values: dict[str, Any]):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}; known: {sorted(known)}")
    return cls(**values)
