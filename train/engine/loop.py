"""`train_one_epoch` and `predict`, as in torchvision's video_classification reference.

Batches are dicts: ``x`` (``(B, 1, H, W)`` single frames in stage 1, ``(B, T, 1, H, W)``
windows in stage 2, or ``(B, T, D)`` cached features), ``label`` ``(B,)`` and ``clip``
``(B,)`` (the index of the clip the sample came from, for clip-level aggregation), and for
models with derived inputs optionally ``derived`` (those inputs, from a per-clip cache: passed
to the model after ``x``). ``model``
is whatever maps ``x`` to logits: an `EchoModel`, a `stages` adapter, or their DDP wrapper.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from echoweave.edge.errors import EchoweaveError
from echoweave.train.config import OptimConfig
from echoweave.train.engine.distill import distillation_loss
from echoweave.train.engine.losses import evidential_uncertainty, training_loss
from echoweave.train.engine.runtime import Runtime, all_reduce_sum


def make_optimizer(model: torch.nn.Module, optim: OptimConfig) -> torch.optim.Optimizer:
    """The configured optimiser over the trainable parameters.

    ``sgd``: SGD with momentum and L2 weight decay (the paper's stage 1). ``adam``: Adam with
    ``betas=(momentum, beta2)`` and L2 weight decay (the paper's stage 2: "Adam ... with a
    momentum of 0.75, L2 regularization of 1e-3"). ``adamw``: decoupled weight decay.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if optim.optimizer == "sgd":
        return torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay)
    betas = (optim.momentum, optim.beta2)
    if optim.optimizer == "adam":
        return torch.optim.Adam(params, lr=optim.lr, betas=betas, weight_decay=optim.weight_decay)
    if optim.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=optim.lr, betas=betas, weight_decay=optim.weight_decay)
    raise EchoweaveError(f"unknown optimizer {optim.optimizer!r}; use sgd, adam or adamw")


def make_scheduler(optimizer: torch.optim.Optimizer, optim: OptimConfig, steps_per_epoch: int):
    """The ``optim.schedule`` over the whole run, stepped per batch.

    ``one_cycle``: one-cycle with max lr = ``optim.lr``. The momentum (SGD) or beta1 (Adam) stays
    at the configured value: OneCycleLR's default would cycle it between 0.85 and 0.95 and
    silently replace the recipe's 0.75. ``warmup_cosine``: see `warmup_cosine_factor`.
    """
    if optim.schedule == "warmup_cosine":
        epochs, warmup, start = optim.epochs, optim.warmup_epochs, optim.warmup_start
        per_epoch = max(1, steps_per_epoch)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine_factor(step / per_epoch, epochs, warmup, start))
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=optim.lr, total_steps=max(1, optim.epochs * steps_per_epoch), cycle_momentum=False
    )


def warmup_cosine_factor(epoch: float, epochs: int, warmup_epochs: int, start: float) -> float:
    """Learning rate over ``optim.lr`` at ``epoch`` (fractional: batches done / batches per epoch).

    A linear warm-up from ``start`` to 1 over ``warmup_epochs``, then a cosine from 1 to 0 over
    the remaining epochs: at whole epochs exactly the reference's per-epoch schedule (bgx666/stfm
    ``trainSelective.py``: ``SequentialLR(LinearLR(start_factor=0.1, total_iters=5),
    CosineAnnealingLR(T_max=epochs - 5, eta_min=0))``), here also moving within an epoch.
    """
    if epoch < warmup_epochs:
        return start + (1.0 - start) * epoch / warmup_epochs
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (epoch - warmup_epochs) / (epochs - warmup_epochs))))


def train_one_epoch(model, loader, optimizer, scheduler, rt: Runtime, optim: OptimConfig, epoch: int,
                    channels_last: bool = False, show_progress: bool = True, bank=None,
                    teacher=None) -> dict[str, float]:
    """One pass over ``loader``; returns mean loss, accuracy and the last learning rate.

    With a segment ``bank`` (`SegmentBank`, batches carry each window's ``centre`` frame), each
    window's confidence ``1 - evidential uncertainty`` of its logits goes into the bank.
    With a ``teacher`` (`echoweave.train.engine.distill.Teacher`) the loss is the distillation
    loss on the teacher's logits for the same batch, and the mean soft KL is returned as
    ``distill_kl``.

    Raises:
        EchoweaveError: the loss became NaN or infinite (nothing is saved then).
    """
    model.train()
    loss_sum, correct, seen, kl_sum = 0.0, 0.0, 0.0, 0.0
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not (show_progress and rt.is_main))
    for batch in bar:
        x = batch["x"].to(rt.device, non_blocking=True)
        y = batch["label"].to(rt.device, non_blocking=True)
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        derived = [d.to(rt.device, non_blocking=True) for d in batch.get("derived", ())]
        with rt.autocast():
            logits = model(x, *derived)
            if teacher is None:
                loss = training_loss(logits, y, optim)  # optim.loss: cross_entropy or reedl
            else:  # the teacher runs in eval mode under no_grad on the same batch
                loss, kl = distillation_loss(logits, teacher.logits(batch, x), y, teacher.temperature,
                                             teacher.alpha, optim)
                kl_sum += kl.item() * y.shape[0]
        if not torch.isfinite(loss):
            raise EchoweaveError(f"loss became {loss.item()} at epoch {epoch}; stopping before any "
                                 "checkpoint is overwritten (lower the learning rate or check the data)")
        if bank is not None:
            confidence = 1.0 - evidential_uncertainty(logits.detach(), optim.evidence_prior)
            bank.update_batch(batch["clip"].tolist(), batch["centre"].tolist(), confidence.cpu().tolist())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
        optimizer.step()
        scheduler.step()
        n = y.shape[0]
        loss_sum += loss.item() * n
        correct += (logits.argmax(1) == y).sum().item()
        seen += n
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
    loss_sum, correct, seen, kl_sum = all_reduce_sum([loss_sum, correct, seen, kl_sum], rt)
    if seen == 0:
        raise EchoweaveError("the training split is empty: no batch was drawn")
    return {"loss": loss_sum / seen, "accuracy": correct / seen, "lr": scheduler.get_last_lr()[0],
            "samples": int(seen), **({"distill_kl": kl_sum / seen} if teacher is not None else {})}


@torch.no_grad()
def predict(model, loader, rt: Runtime, channels_last: bool = False,
            show_progress: bool = False, with_logits: bool = False) -> tuple[np.ndarray, ...]:
    """Softmax probabilities for every sample of ``loader`` (in this process).

    Returns:
        ``(probs (N, K) float64, labels (N,), clips (N,))`` as numpy arrays, and the logits
        ``(N, K)`` float64 fourth with ``with_logits`` (evidential fusion needs them).
    """
    model.eval()
    probs, labels, clips, raw = [], [], [], []
    for batch in tqdm(loader, desc="eval", leave=False, disable=not show_progress):
        x = batch["x"].to(rt.device, non_blocking=True)
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        derived = [d.to(rt.device, non_blocking=True) for d in batch.get("derived", ())]
        with rt.autocast():
            logits = model(x, *derived)
        p = torch.softmax(logits.float(), dim=1)
        if not torch.isfinite(p).all():
            raise EchoweaveError("model produced non-finite outputs during evaluation")
        probs.append(p.cpu().double().numpy())
        raw.append(logits.float().cpu().double().numpy())
        labels.append(batch["label"].numpy())
        clips.append(batch["clip"].numpy())
    if not probs:
        raise EchoweaveError("the evaluation split is empty: no batch was drawn")
    out = (np.concatenate(probs), np.concatenate(labels), np.concatenate(clips))
    return (*out, np.concatenate(raw)) if with_logits else out
