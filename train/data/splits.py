"""Patient-wise splits: no patient's clips ever sit on both sides of a split.

    folds = patient_kfold(patients, labels, k=5, seed=0)         # [(train_idx, test_idx), ...]
    train, val, test = patient_train_val_test_split(patients, labels, val_fraction=0.15,
                                                    test_fraction=0.15, seed=0)

Clips of one patient look alike (same probe angle, depth, gain, anatomy), so a clip-wise split
leaks and inflates accuracy; the paper's 5-fold cross-validation is by patient. Both splitters
take per-clip patient ids and labels (same length) and return sorted ``np.int64`` clip indices.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from echoweave.edge.errors import EchoweaveError

__all__ = ["Fold", "Split", "patient_kfold", "patient_train_val_test_split"]


class Fold(NamedTuple):
    """One cross-validation fold: clip indices to train on and held-out clip indices."""

    train: np.ndarray
    test: np.ndarray


class Split(NamedTuple):
    """A patient-wise train/validation/test split of clip indices."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _groups(patients: Sequence, labels: Sequence | None) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Patient ids -> dense group ids (one per clip), labels as an array, number of patients."""
    patients = np.asarray(patients)
    if patients.ndim != 1 or len(patients) == 0:
        raise EchoweaveError(f"need a non-empty 1-D list of per-clip patient ids, got shape {patients.shape}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != patients.shape:
            raise EchoweaveError(f"{len(labels)} labels for {len(patients)} clips; give one label per clip")
    _, groups = np.unique(patients, return_inverse=True)
    return groups.astype(np.int64), labels, int(groups.max()) + 1


def patient_kfold(patients: Sequence, labels: Sequence, k: int = 5, seed: int = 0) -> list[Fold]:
    """K folds by patient, stratified by view where the patients allow it.

    Uses scikit-learn's `StratifiedGroupKFold` (shuffled, seeded): every patient lands in exactly
    one test fold, and folds keep the class mix close to the whole set's. With few patients per
    class the stratification is approximate (sklearn warns when a class has fewer than k clips).

    Args:
        patients: patient id of every clip.
        labels: class id of every clip.
        k: number of folds (at least 2, at most the number of patients).
        seed: seeds the shuffle; the same seed gives the same folds.

    Returns:
        k `Fold` tuples ``(train, test)`` of sorted int64 clip indices.

    Raises:
        EchoweaveError: fewer patients than folds, k < 2, or mismatched inputs.
    """
    groups, labels, n_patients = _groups(patients, labels)
    if k < 2:
        raise EchoweaveError(f"k-fold needs k >= 2 folds, got {k}")
    if n_patients < k:
        raise EchoweaveError(
            f"{k}-fold cross-validation by patient needs at least {k} patients, the data has {n_patients}; "
            f"use fewer folds or more patients"
        )
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = splitter.split(np.zeros(len(groups)), labels, groups)
    return [Fold(np.sort(tr).astype(np.int64), np.sort(te).astype(np.int64)) for tr, te in folds]


def _n_patients(fraction: float, n: int) -> int:
    """Patients for a part: none for 0, else the rounded share but at least one."""
    return 0 if fraction == 0 else max(1, int(round(fraction * n)))


def _imbalance(parts: list[np.ndarray], labels: np.ndarray, classes: np.ndarray) -> float:
    """Sum over non-empty parts of the L1 gap between the part's and the whole set's class mix."""
    overall = np.array([(labels == c).mean() for c in classes])
    gap = 0.0
    for part in parts:
        if len(part):
            gap += np.abs(np.array([(labels[part] == c).mean() for c in classes]) - overall).sum()
    return gap


def patient_train_val_test_split(
    patients: Sequence,
    labels: Sequence | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    candidates: int = 32,
) -> Split:
    """Split clips into train/validation/test by patient (fractions count patients).

    A fraction > 0 always gets at least one patient; a fraction of 0 gives an empty part. When
    labels are given, `candidates` seeded patient shuffles are tried and the one whose parts'
    class mix is closest to the whole set's is kept (a cheap stratification by patient).

    Args:
        patients: patient id of every clip.
        labels: class id of every clip, or None for a plain random patient split.
        val_fraction: share of patients for validation, in [0, 1).
        test_fraction: share of patients for test, in [0, 1).
        seed: the same seed gives the same split.
        candidates: shuffles tried when balancing classes (1 = plain random).

    Returns:
        `Split` ``(train, val, test)`` of sorted int64 clip indices.

    Raises:
        EchoweaveError: bad fractions, or too few patients to give every requested part one.
    """
    groups, labels, n = _groups(patients, labels)
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise EchoweaveError(f"{name} must be in [0, 1), got {f}")
    if val_fraction + test_fraction >= 1.0:
        raise EchoweaveError(f"val_fraction + test_fraction must leave patients for training, got "
                             f"{val_fraction} + {test_fraction}")
    n_test, n_val = _n_patients(test_fraction, n), _n_patients(val_fraction, n)
    if n - n_test - n_val < 1:
        raise EchoweaveError(f"{n} patients cannot fill train, val ({n_val}) and test ({n_test}) with one patient "
                             f"each at least; lower the fractions or add patients")
    rng = np.random.default_rng(seed)
    best, best_gap = None, np.inf
    for _ in range(max(1, candidates) if labels is not None else 1):
        perm = rng.permutation(n)  # patient order
        owner = np.empty(n, dtype=np.int64)  # 0 train, 1 val, 2 test, per patient
        owner[perm[:n_test]], owner[perm[n_test : n_test + n_val]], owner[perm[n_test + n_val :]] = 2, 1, 0
        part = owner[groups]  # per clip
        split = Split(*(np.flatnonzero(part == p).astype(np.int64) for p in (0, 1, 2)))
        gap = 0.0 if labels is None else _imbalance(list(split), labels, np.unique(labels))
        if gap < best_gap:
            best, best_gap = split, gap
    return best
