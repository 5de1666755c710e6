"""Checkpoints: weights as safetensors plus JSON metadata, written atomically.

A run folder holds complete epoch checkpoints::

    runs/tfw/checkpoints/epoch_0003/{model.safetensors, checkpoint.json, train_state.pt}
    runs/tfw/checkpoints/latest            # text file naming the newest complete folder

Each epoch folder is first written under a temporary name (``.epoch_0003.<random>``) and renamed
into place (a rename is atomic), so a crash mid-write leaves the previous checkpoint untouched and
`--resume` never sees a half-written one; temporary folders a kill left behind are removed by
`clean_stale_temp` when the next run starts. ``checkpoint.json`` carries what export and the edge
need without torch: the model config, class names, the preprocessing spec, metrics and the
training state.

``train_state.pt`` (optimizer and scheduler state) is read with ``torch.load(weights_only=True)``:
torch's restricted unpickler admits tensors, numbers, strings and containers only, so a crafted
file in a checkpoint folder cannot run code on ``--resume``; it is refused with an error instead.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from echoweave.edge.atomic import write_json_atomic, write_text_atomic
from echoweave.edge.errors import EchoweaveError
from echoweave.train.models import ModelConfig, build_model

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
    clean_stale_temp(run_dir)
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
        os.replace(tmp, final)  # a folder swap (the whole epoch checkpoint); its files go through edge.atomic
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_text_atomic(ckpt_root / "latest", final.name)
    # Prune by epoch number, never the folder just written (even if older runs left higher numbers).
    older = sorted((p for p in ckpt_root.glob("epoch_*") if p.is_dir() and p != final), key=_epoch_of)
    for old in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _epoch_of(folder: Path) -> int:
    try:
        return int(folder.name.split("_", 1)[1])
    except (IndexError, ValueError):
        return -1


def clean_stale_temp(run_dir: str | Path) -> list[Path]:
    """Remove ``checkpoints/.epoch_*`` temporary folders a killed save left behind.

    Only one process saves into a run (rank 0), so any temporary folder present before a save
    starts belongs to a save that never finished.

    Returns:
        The folders removed.
    """
    root = Path(run_dir) / "checkpoints"
    stale = [p for p in root.glob(".epoch_*") if p.is_dir()] if root.is_dir() else []
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


def existing_run(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint already in ``run_dir`` (None for a new or empty run folder)."""
    return find_checkpoint(run_dir) if Path(run_dir).is_dir() else None


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


def checkpoint_epoch(folder: str | Path) -> int:
    """The epoch a checkpoint folder's metadata records, read without loading the weights
    (-1 when the metadata is unreadable: `load_checkpoint` then says why)."""
    try:
        return int(json.loads((Path(folder) / META).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


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


def load_model(checkpoint: str | Path, device: torch.device | str | None = None):
    """Rebuild a trained model from a checkpoint. Returns ``(model in eval mode, meta)``.

    Raises:
        EchoweaveError: no readable checkpoint there, or its weights do not fit its model config.
    """
    state, meta, folder = load_checkpoint(checkpoint)
    model = build_model(ModelConfig.from_dict(meta["model"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise EchoweaveError(f"{folder}: weights do not fit the model config ({exc})") from exc
    return model.to(device or "cpu").eval(), meta


def load_train_state(folder: str | Path) -> dict[str, Any] | None:
    """The optimizer/scheduler state saved beside a checkpoint, if any.

    Raises:
        EchoweaveError: the file holds anything but tensors, numbers, strings and containers
            (a pickle that would run code or build arbitrary objects), or is unreadable.
    """
    path = Path(folder) / STATE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        # torch's message is a multi-paragraph guide on how to load it anyway; keep the line naming
        # what was refused (e.g. "Unsupported global: GLOBAL posix.system ...").
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__]
        what = next((ln for ln in lines if "Unsupported" in ln or "WeightsUnpickler" in ln), lines[0])
        raise EchoweaveError(f"{path}: refused: holds objects other than tensors and plain data, which could "
                             f"run code on load ({what.split('. ')[0][:200]})") from None
    except Exception as exc:  # truncated zip, not a torch file at all...
        raise EchoweaveError(f"{path}: unreadable training state ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or not {"optimizer", "scheduler"} <= set(state):
        raise EchoweaveError(f"{path}: not an echoweave training state (needs optimizer and scheduler entries)")
    return state
