"""Input checks shared by the evaluation modules: every bad array raises one clear error.

Evaluation takes plain numpy arrays from any model (eager, exported, streaming), so the checks
here are the only place that knows what a valid prediction set looks like:
labels (N,) integers in [0, K), probabilities (N, K) finite, non-negative, rows summing to 1.
"""
from __future__ import annotations

import numpy as np

from echoweave.edge.errors import EchoweaveError

# Softmax outputs in float16/float32 sum to 1 within ~1e-3; logits or unnormalised scores do
# not, and averaging logits per video would silently change the video-level result.
ROW_SUM_TOLERANCE = 1e-3


class EvaluationInputError(EchoweaveError, ValueError):
    """Arrays handed to an evaluation function are empty, malformed or inconsistent."""


def check_labels(labels, num_classes: int | None = None, name: str = "labels") -> np.ndarray:
    """Return `labels` as a 1-D int64 array, checking it is non-empty and in [0, num_classes).

    Args:
        labels: class ids, shape (N,); integer-valued floats are accepted.
        num_classes: K; when given, every label must be < K.
        name: what to call the array in error messages.

    Returns:
        int64 array of shape (N,).
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise EvaluationInputError(f"{name} must be 1-D (N,), got shape {arr.shape}")
    if arr.size == 0:
        raise EvaluationInputError(f"{name} is empty: nothing to evaluate")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
            or arr.dtype == bool):
        raise EvaluationInputError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise EvaluationInputError(f"{name} contains NaN or inf")
        if not np.all(arr == np.round(arr)):
            raise EvaluationInputError(f"{name} must hold integer class ids, got fractional values")
    out = arr.astype(np.int64)
    low, high = int(out.min()), int(out.max())
    if low < 0:
        raise EvaluationInputError(f"{name} contains {low}: class ids must be >= 0")
    if num_classes is not None and high >= num_classes:
        raise EvaluationInputError(
            f"{name} contains class id {high}, outside range [0, {num_classes}) "
            f"for {num_classes} classes")
    return out


def check_probs(probs, name: str = "probs") -> np.ndarray:
    """Return `probs` as a float64 (N, K) array of per-row probability distributions.

    Args:
        probs: softmax outputs, shape (N, K), K >= 2.
        name: what to call the array in error messages.

    Returns:
        float64 array of shape (N, K).
    """
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 2:
        raise EvaluationInputError(f"{name} must be 2-D (N, K), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise EvaluationInputError(f"{name} is empty: nothing to evaluate")
    if arr.shape[1] < 2:
        raise EvaluationInputError(f"{name} needs K >= 2 class columns, got {arr.shape[1]}")
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise EvaluationInputError(
            f"{name} contains {int(bad.sum())} NaN/inf values (first in row {row})")
    if (arr < 0).any():
        raise EvaluationInputError(f"{name} contains negative values: pass softmax probabilities")
    sums = arr.sum(axis=1)
    if np.abs(sums - 1.0).max() > ROW_SUM_TOLERANCE:
        raise EvaluationInputError(
            f"{name} rows must sum to 1 (softmax probabilities), got row sums in "
            f"[{sums.min():.4g}, {sums.max():.4g}]; apply softmax to logits first")
    return arr


def check_same_length(**arrays) -> int:
    """Check that all named arrays have the same first dimension and return it.

    Args:
        **arrays: name -> array (already converted).

    Returns:
        The common length N.
    """
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise EvaluationInputError(f"mismatched lengths: {detail}")
    return next(iter(lengths.values()))


def check_class_names(class_names, num_classes: int) -> list[str]:
    """Return class names as a list of str, checking there is one per probability column."""
    names = [str(n) for n in class_names]
    if len(names) != num_classes:
        raise EvaluationInputError(
            f"got {len(names)} class names for {num_classes} probability columns")
    if len(set(names)) != len(names):
        raise EvaluationInputError(f"class names are not unique: {names}")
    return names
