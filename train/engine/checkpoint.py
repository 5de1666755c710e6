"""Checkpoints: weights as safetensors plus JSON metadata, written atomically.

A run folder holds complete epoch checkpoints::

    runs/tfw/checkpoints/epoch_0003/{model.safetensors, checkpoint.json, train_state.pt}
    runs/tfw/checkpoints/latest            # text file naming the newest complete folder

Each epoch folder is first written under a temporary name and renamed into place (a rename is
atomic), so a crash mid-write leaves the previous checkpoint untouched and `--resume` never
sees a half-written one. ``checkpoint.json`` carries what export and the edge need without
torch: the model config, class names, the preprocessing spec, metrics and the training state.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from echoweave.edge.atomic import write_json_atomic, write_text_atomic
from echoweave.edge.errors import EchoweaveError

WEIGHTS = "model.safetensors"
META = "checkpoint.json"
STATE = "train_state.pt"
FORMAT_VERSION = 1


def save_checkpoint(
    run_dir: str | Path,
    epoch: int,
    model: torch.nn.Module,
    meta: dict[str, Any],
    train_state: dict[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Save one complete epoch checkpoint and point ``latest`` at it.

    Args:
        run_dir: the run folder (checkpoints go to ``run_dir/checkpoints``).
        epoch: number of completed epochs (1-based).
        model: the (unwrapped) model whose ``state_dict`` is saved.
        meta: JSON-ready metadata: ``model`` config dict, ``class_names``, ``preprocessing``,
            ``metrics``, ``train`` (the resolved TrainConfig) ...
        train_state: optimizer/scheduler/RNG state for ``--resume`` (torch.save format).
        keep: how many complete epoch checkpoints to keep (older ones are removed).

    Returns:
        The checkpoint folder.
    """
    ckpt_root = Path(run_dir) / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"epoch_{epoch:04d}"
    tmp = Path(tempfile.mkdtemp(dir=ckpt_root, prefix=f".epoch_{epoch:04d}."))
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS))
        write_json_atomic(tmp / META, {**meta, "epoch": epoch, "format_version": FORMAT_VERSION})
        if train_state is not None:
            torch.save(train_state, tmp / STATE)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_text_atomic(ckpt_root / "latest", final.name)
    for old in sorted(p for p in ckpt_root.glob("epoch_*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(path: str | Path) -> Path | None:
    """Resolve a run folder, its ``checkpoints`` folder or an epoch folder to the newest
    complete checkpoint folder (``None`` when there is none yet)."""
    path = Path(path)
    if (path / META).is_file() and (path / WEIGHTS).is_file():
        return path
    root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    latest = root / "latest"
    if latest.is_file():
        candidate = root / latest.read_text().strip()
        if (candidate / META).is_file() and (candidate / WEIGHTS).is_file():
            return candidate
    complete = sorted(p for p in root.glob("epoch_*") if (p / META).is_file() and (p / WEIGHTS).is_file())
    return complete[-1] if complete else None


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], Path]:
    """Load weights and metadata from a run, checkpoints or epoch folder.

    Returns:
        ``(state_dict, meta, checkpoint_folder)``.

    Raises:
        EchoweaveError: no complete checkpoint there, or it is unreadable.
    """
    folder = find_checkpoint(path)
    if folder is None:
        raise EchoweaveError(f"{path}: no complete checkpoint found (expected {WEIGHTS} + {META})")
    try:
        meta = json.loads((folder / META).read_text())
        state = load_file(str(folder / WEIGHTS))
    except Exception as exc:  # safetensors and json raise several types
        raise EchoweaveError(f"{folder}: unreadable checkpoint ({exc})") from exc
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise EchoweaveError(f"{folder}: checkpoint format {meta['format_version']} is newer than "
                             f"this echoweave understands ({FORMAT_VERSION}); upgrade echoweave")
    return state, meta, folder


def load_train_state(folder: str | Path) -> dict[str, Any] | None:
    """The optimizer/scheduler state saved beside a checkpoint, if any."""
    path = Path(folder) / STATE
    return torch.load(path, weights_only=False) if path.is_file() else None
