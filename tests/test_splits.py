"""Patient-wise splits: no leakage across parts, full coverage, determinism, class balance."""
import numpy as np
import pytest

from echoweave.edge.errors import EchoweaveError
from echoweave.train.data.splits import patient_kfold, patient_train_val_test_split


def _dataset(n_patients=20, n_classes=4, seed=0):
    """Each patient has 2-6 clips of random views, like a real echo study."""
    rng = np.random.default_rng(seed)
    patients, labels = [], []
    for p in range(n_patients):
        for _ in range(rng.integers(2, 7)):
            patients.append(f"P{p:03d}")
            labels.append(int(rng.integers(0, n_classes)))
    return np.array(patients), np.array(labels)


def _mix(labels, idx, n_classes=4):
    return np.bincount(labels[idx], minlength=n_classes) / len(idx)


def test_kfold_keeps_patients_apart_and_tests_every_clip_once():
    patients, labels = _dataset()
    folds = patient_kfold(patients, labels, k=5, seed=0)
    assert len(folds) == 5
    seen = np.concatenate([f.test for f in folds])
    np.testing.assert_array_equal(np.sort(seen), np.arange(len(patients)))  # each clip in exactly one test fold
    for train, test in folds:
        assert train.dtype == np.int64 and test.dtype == np.int64
        assert set(patients[train]).isdisjoint(patients[test])
        np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(len(patients)))


def test_kfold_is_deterministic_under_its_seed():
    patients, labels = _dataset()
    a, b = patient_kfold(patients, labels, k=5, seed=3), patient_kfold(patients, labels, k=5, seed=3)
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(fa.test, fb.test)
    c = patient_kfold(patients, labels, k=5, seed=4)
    assert any(not np.array_equal(fa.test, fc.test) for fa, fc in zip(a, c))


def test_kfold_is_roughly_stratified():
    patients, labels = _dataset(n_patients=60, seed=1)
    overall = _mix(labels, np.arange(len(labels)))
    for fold in patient_kfold(patients, labels, k=5, seed=0):
        assert np.abs(_mix(labels, fold.test) - overall).max() < 0.08


def test_kfold_refuses_fewer_patients_than_folds():
    patients, labels = _dataset(n_patients=3)
    with pytest.raises(EchoweaveError, match="needs at least 5 patients, the data has 3"):
        patient_kfold(patients, labels, k=5)
    with pytest.raises(EchoweaveError, match="k >= 2"):
        patient_kfold(patients, labels, k=1)
    with pytest.raises(EchoweaveError, match="one label per clip"):
        patient_kfold(patients, labels[:-1], k=2)


def test_train_val_test_split_by_patient():
    patients, labels = _dataset(n_patients=20)
    split = patient_train_val_test_split(patients, labels, val_fraction=0.2, test_fraction=0.1, seed=0)
    parts = [set(patients[p]) for p in split]
    assert [len(p) for p in parts] == [14, 4, 2]  # fractions count patients
    assert parts[0].isdisjoint(parts[1]) and parts[0].isdisjoint(parts[2]) and parts[1].isdisjoint(parts[2])
    np.testing.assert_array_equal(np.sort(np.concatenate(split)), np.arange(len(patients)))
    again = patient_train_val_test_split(patients, labels, val_fraction=0.2, test_fraction=0.1, seed=0)
    for a, b in zip(split, again):
        np.testing.assert_array_equal(a, b)


def test_zero_test_fraction_gives_an_empty_test_part():
    patients, labels = _dataset(n_patients=6)
    train, val, test = patient_train_val_test_split(patients, labels, val_fraction=0.2, test_fraction=0.0, seed=1)
    assert len(test) == 0 and test.dtype == np.int64
    assert len(set(patients[val])) == 1  # round(0.2 * 6) = 1
    assert len(train) + len(val) == len(patients)


def test_balancing_brings_the_validation_mix_closer_than_a_plain_shuffle():
    patients, labels = _dataset(n_patients=30, seed=2)
    overall = _mix(labels, np.arange(len(labels)))

    def gap(candidates):
        _, val, test = patient_train_val_test_split(patients, labels, 0.2, 0.2, seed=0, candidates=candidates)
        return np.abs(_mix(labels, val) - overall).sum() + np.abs(_mix(labels, test) - overall).sum()

    assert gap(32) <= gap(1)
    assert gap(32) < 0.5


def test_split_errors_are_clear():
    patients, labels = _dataset(n_patients=2)
    with pytest.raises(EchoweaveError, match="2 patients cannot fill train"):
        patient_train_val_test_split(patients, labels, val_fraction=0.1, test_fraction=0.1)
    with pytest.raises(EchoweaveError, match="val_fraction must be in"):
        patient_train_val_test_split(patients, labels, val_fraction=1.2)
    with pytest.raises(EchoweaveError, match="leave patients for training"):
        patient_train_val_test_split(patients, labels, val_fraction=0.5, test_fraction=0.5)
