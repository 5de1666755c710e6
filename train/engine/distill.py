"""Knowledge distillation: a small student learns from a trained teacher's softened outputs.

Configured by ``distill: {teacher, temperature, alpha}`` (`echoweave.train.config.DistillConfig`).
The training loss of a distilled run is (Hinton et al., 2015)::

    alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))  +  (1 - alpha) * CE(z_s, y)

with z_t the teacher's and z_s the student's logits on the *same* batch, and CE the run's own
`training_loss` (cross-entropy, label smoothing included). T^2 keeps the gradient of the soft
term on the scale of the hard one when T changes (the soft gradients shrink as 1/T^2).

What the teacher sees, per stage of the two-stage recipe (`Teacher.mode`):

- ``image`` (stage 1, single frames): the teacher must be an *image* model (``forward_image``):
  the teacher's own stage 1. A TFW teacher has no per-frame output (its answer needs a window),
  so a window teacher given to an image stage is refused rather than fed a fake window.
- ``window`` (stage 2 on pixel windows): the teacher's ``forward`` on the same (augmented)
  window.
- ``features`` (stage 2 with ``freeze_backbone`` + ``cache_features``, the CPU recipes): the
  student's batch holds *its* cached features, which the teacher cannot read; the teacher's own
  ``embed_frame`` features of every clip are cached once as well (with the teacher's own eval
  preprocessing) and each training window carries the teacher's features of the same frames
  (`TeacherFeatureWindows`, key ``teacher_x``), which go through the teacher's
  ``classify_window``.

The teacher must be trained on the same class names in the same order (refused otherwise, naming
its checkpoint), and a window teacher must see the same window: equal ``frames`` and
``frame_stride``. The store's clips are prepared (gray, sector mask) the student's way, so the
teacher's preprocessing may differ only in ``resize``/``crop``: cached features are embedded
with the teacher's exact eval transform; pixel batches (already cropped for the student) are
resized to the teacher's crop with antialiased bilinear interpolation (a close, not exact,
stand-in for the teacher's resize-then-crop; equal specs pass the batch through untouched).

The teacher is never a submodule of the student: it is not in the student's ``state_dict``
(checkpoints hold the student only), not in the optimiser, not wrapped by DDP, and the student's
``train()`` does not switch it out of eval mode. Its checkpoint folder, epoch and the sha256 of
its weights are written into the student's ``checkpoint.json`` (``distill``); a resumed run
refuses a teacher whose weights changed since the run started.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from echoweave.edge.errors import EchoweaveError
from echoweave.edge.manifest import sha256_file
from echoweave.edge.preprocess import PreprocessSpec
from echoweave.train.config import DistillConfig, OptimConfig, TrainConfig
from echoweave.train.engine import checkpoint as ckpt
from echoweave.train.engine.features import FeatureWindows, embed_clips
from echoweave.train.engine.losses import training_loss


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``KL(softmax(teacher / T) || softmax(student / T))``, mean over the batch (float32).

    Args:
        student_logits: ``(B, K)``.
        teacher_logits: ``(B, K)`` (no gradient needed).
        temperature: T > 0.
    """
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    # kl_div(input, target) = sum target * (log target - input): the teacher is the target.
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor,
                      temperature: float, alpha: float, optim: OptimConfig | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``alpha * T^2 * soft_kl + (1 - alpha) * CE`` and the KL term alone (detached, for logging).

    Args:
        student_logits: ``(B, K)``.
        teacher_logits: ``(B, K)``.
        target: ``(B,)`` class ids.
        temperature: T > 0.
        alpha: weight of the distillation term, in [0, 1].
        optim: the run's optimiser settings: the hard term is its `training_loss` (cross-entropy
            with its label smoothing); None = plain cross-entropy.

    Returns:
        ``(loss, kl)``: scalars.
    """
    kl = soft_kl(student_logits, teacher_logits, temperature)
    hard = training_loss(student_logits, target, optim) if optim is not None else F.cross_entropy(
        student_logits.float(), target)
    return alpha * temperature ** 2 * kl + (1.0 - alpha) * hard, kl.detach()


class Teacher:
    """A frozen teacher for one student run (see the module docstring for the three modes).

    Attributes:
        model: the teacher, eval mode, no gradients, on the student's device.
        mode: ``image``, ``window`` or ``features``.
        temperature, alpha: from the config.
        record: what goes into the student's ``checkpoint.json`` as ``distill``.
    """

    def __init__(self, cfg: TrainConfig, class_names, device: torch.device, student):
        from echoweave.train.models import build_model
        from echoweave.train.models.config import ModelConfig

        dcfg: DistillConfig = cfg.distill
        self.temperature, self.alpha = float(dcfg.temperature), float(dcfg.alpha)
        if cfg.optim.loss != "cross_entropy":
            raise EchoweaveError(f"distill: the student's loss must be cross_entropy (got optim.loss "
                                 f"{cfg.optim.loss!r}); the soft targets are softmax distributions")
        folder = ckpt.find_checkpoint(dcfg.teacher)
        if folder is None:
            raise EchoweaveError(f"distill.teacher {dcfg.teacher}: no complete checkpoint there (train the "
                                 "teacher first; in a recipe, a teacher named by stage/variant must come earlier)")
        state, meta, folder = ckpt.load_checkpoint(folder)
        where = f"distill.teacher {folder}"
        if list(meta.get("class_names", [])) != list(class_names):
            raise EchoweaveError(f"{where}: the teacher's classes {list(meta.get('class_names', []))} differ from "
                                 f"the student's dataset classes {list(class_names)}; a teacher must be trained on "
                                 "the same class set in the same order")
        model = build_model(ModelConfig.from_dict(meta["model"]))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise EchoweaveError(f"{where}: weights do not fit its model config ({exc})") from exc
        model.to(device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.model, self.device, self.folder = model, device, Path(folder)
        self.mode = self._mode(cfg, model, student, where)
        spec = PreprocessSpec.from_dict(meta.get("preprocessing", {}))
        mine = cfg.data.preprocessing
        if (spec.grayscale, spec.sector_mask) != (mine.grayscale, mine.sector_mask):
            raise EchoweaveError(f"{where}: the teacher was trained with grayscale={spec.grayscale}, "
                                 f"sector_mask={spec.sector_mask}, the student's data has grayscale={mine.grayscale}, "
                                 f"sector_mask={mine.sector_mask}; the clips are prepared once, the student's way")
        self.spec, self.teacher_data = spec, dataclasses.replace(cfg.data, preprocessing=spec)
        self.record = {"teacher": dcfg.teacher, "checkpoint": str(Path(folder).resolve()), "epoch": int(meta.get("epoch", 0)),
                       "weights_sha256": sha256_file(Path(folder) / ckpt.WEIGHTS),
                       "model": meta["model"].get("name"), "backbone": meta["model"].get("backbone"),
                       "preprocessing": spec.to_dict(), "mode": self.mode,
                       "temperature": self.temperature, "alpha": self.alpha}

    @staticmethod
    def _mode(cfg: TrainConfig, teacher, student, where: str) -> str:
        name = teacher.cfg.name
        if getattr(teacher, "derived_inputs", None) and teacher.derived_inputs():
            raise EchoweaveError(f"{where}: a teacher with derived inputs ({name}) is not supported")
        if cfg.stage == "image":
            if not hasattr(teacher, "forward_image"):
                raise EchoweaveError(f"{where}: an image-stage student learns one frame at a time, but the teacher "
                                     f"({name}) has no single-frame output; use the teacher's stage-1 image model")
            return "image"
        same_window = (teacher.cfg.frames, teacher.cfg.frame_stride) == (student.cfg.frames, student.cfg.frame_stride)
        if not same_window:
            raise EchoweaveError(f"{where}: the teacher sees windows of {teacher.cfg.frames} frames at stride "
                                 f"{teacher.cfg.frame_stride}, the student {student.cfg.frames} at stride "
                                 f"{student.cfg.frame_stride}; distillation needs the same window")
        if cfg.cache_features:
            if not teacher.streams_per_frame:
                raise EchoweaveError(f"{where}: the student trains on cached features, so the teacher's features are "
                                     f"cached too; the teacher ({name}) has no embed_frame/classify_window split")
            return "features"
        return "window"

    def check_resume(self, meta: dict, folder) -> None:
        """Refuse to resume a distilled run with a teacher other than the one it started with."""
        old = meta.get("distill") or {}
        if old.get("weights_sha256") not in (None, self.record["weights_sha256"]):
            raise EchoweaveError(f"{folder}: this run was distilled from teacher weights sha256 "
                                 f"{old['weights_sha256'][:12]}... ({old.get('checkpoint')}), but distill.teacher "
                                 f"{self.folder} now holds {self.record['weights_sha256'][:12]}...; resuming would "
                                 "mix two teachers")

    def features(self, store) -> list[torch.Tensor]:
        """The teacher's ``embed_frame`` of every frame of every clip, with its own eval transform."""
        from echoweave.train.engine.data import make_transforms

        _, eval_tf = make_transforms(dataclasses.replace(self.teacher_data, augment=False))
        return embed_clips(self.model, store, eval_tf, self.device)

    def _pixels(self, x: torch.Tensor) -> torch.Tensor:
        """The student's pixel batch at the teacher's input size (unchanged when equal)."""
        size = self.spec.crop
        if x.shape[-1] == size and x.shape[-2] == size:
            return x
        flat = x.reshape(-1, *x.shape[-3:])  # (B[*T], C, H, W)
        flat = F.interpolate(flat.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return flat.reshape(*x.shape[:-2], size, size).to(x.dtype)

    @torch.no_grad()
    def logits(self, batch: dict, x: torch.Tensor) -> torch.Tensor:
        """The teacher's ``(B, K)`` logits for the student's batch (``x`` already on the device)."""
        if self.mode == "features":
            return self.model.classify_window(batch["teacher_x"].to(self.device, non_blocking=True))
        if self.mode == "image":
            return self.model.forward_image(self._pixels(x))
        return self.model(self._pixels(x))


class TeacherFeatureWindows(FeatureWindows):
    """`FeatureWindows` whose items also carry ``teacher_x``: the teacher's cached features of the
    same frames (the student's window, drawn once, indexes both caches)."""

    def __init__(self, *args, teacher_features: list[torch.Tensor], **kwargs):
        self.teacher_features = teacher_features
        super().__init__(*args, **kwargs)

    def __getitem__(self, i: int) -> dict:
        c, idx = self.items[i]
        if idx is None:
            idx = self._draw(c, i)
        rows = torch.as_tensor(np.asarray(idx))
        return {"x": self.features[c][rows], "teacher_x": self.teacher_features[c][rows],
                "label": int(self.store.labels[c]), "clip": c, **self._centre(i)}


__all__ = ["soft_kl", "distillation_loss", "Teacher", "TeacherFeatureWindows"]
