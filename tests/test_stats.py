"""Exact statistics: Clopper–Pearson interval, McNemar's exact test, mean ± std over folds."""
import math

import numpy as np
import pytest

from echoweave.train.evaluation import (
    EvaluationInputError,
    clopper_pearson_ci,
    mcnemar_exact,
    mean_std,
)


@pytest.mark.parametrize("k, n, low, high", [
    (8, 10, 0.4439, 0.9748),   # textbook values for 8/10
    (7, 10, 0.3475, 0.9333),
    (0, 10, 0.0, 0.3085),      # one-sided at the boundary: 1 - 0.025 ** (1/10)
    (10, 10, 0.6915, 1.0),
])
def test_clopper_pearson_known_values(k, n, low, high):
    lo, hi = clopper_pearson_ci(k, n)
    assert lo == pytest.approx(low, abs=1e-4)
    assert hi == pytest.approx(high, abs=1e-4)


def test_clopper_pearson_zero_successes_matches_closed_form():
    lo, hi = clopper_pearson_ci(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-9)


def test_clopper_pearson_wider_at_higher_confidence():
    lo95, hi95 = clopper_pearson_ci(8, 10)
    lo99, hi99 = clopper_pearson_ci(8, 10, confidence=0.99)
    assert lo99 < lo95 and hi99 > hi95


@pytest.mark.parametrize("k, n", [(0, 0), (11, 10), (-1, 10)])
def test_clopper_pearson_rejects_impossible_counts(k, n):
    with pytest.raises(EvaluationInputError):
        clopper_pearson_ci(k, n)


def _pairs(both_right, a_only, b_only, both_wrong):
    """Labels and two prediction vectors with the given 2x2 agreement counts (3 classes)."""
    labels, pa, pb = [], [], []
    for count, a_ok, b_ok in [(both_right, 1, 1), (a_only, 1, 0), (b_only, 0, 1),
                              (both_wrong, 0, 0)]:
        labels += [2] * count
        pa += [2 if a_ok else 0] * count
        pb += [2 if b_ok else 1] * count
    return np.array(labels), np.array(pa), np.array(pb)


def test_mcnemar_exact_b1_c6():
    labels, pa, pb = _pairs(both_right=2, a_only=1, b_only=6, both_wrong=1)
    r = mcnemar_exact(labels, pa, pb)
    # two-sided exact: 2 * P(X <= 1 | n=7, 0.5) = 2 * 8 / 128
    assert (r["b"], r["c"], r["n"]) == (1, 6, 10)
    assert r["p"] == pytest.approx(0.125, abs=1e-12)
    assert r["accuracy_a"] == pytest.approx(0.3)
    assert r["accuracy_b"] == pytest.approx(0.8)


def test_mcnemar_is_symmetric_in_the_two_models():
    labels, pa, pb = _pairs(both_right=5, a_only=1, b_only=6, both_wrong=0)
    ab, ba = mcnemar_exact(labels, pa, pb), mcnemar_exact(labels, pb, pa)
    assert (ab["b"], ab["c"]) == (ba["c"], ba["b"])
    assert ab["p"] == ba["p"]


def test_mcnemar_no_discordant_pairs_gives_p_one():
    labels, pa, pb = _pairs(both_right=4, a_only=0, b_only=0, both_wrong=3)
    r = mcnemar_exact(labels, pa, pb)
    assert (r["b"], r["c"], r["p"]) == (0, 0, 1.0)


def test_mcnemar_large_imbalance_is_significant():
    labels, pa, pb = _pairs(both_right=50, a_only=0, b_only=12, both_wrong=3)
    r = mcnemar_exact(labels, pa, pb)
    assert r["p"] == pytest.approx(2 * 0.5 ** 12)


def test_mcnemar_rejects_mismatched_lengths_and_empty():
    with pytest.raises(EvaluationInputError, match="mismatched lengths"):
        mcnemar_exact([0, 1, 2], [0, 1, 2], [0, 1])
    with pytest.raises(EvaluationInputError, match="empty"):
        mcnemar_exact([], [], [])


def test_mean_std_uses_sample_std():
    r = mean_std([0.5, 1.0])
    assert r["mean"] == pytest.approx(0.75)
    assert r["std"] == pytest.approx(math.sqrt(2 * 0.25 ** 2))
    assert r["n"] == 2
    assert mean_std([0.8])["std"] is None
    with pytest.raises(EvaluationInputError):
        mean_std([0.5, float("nan")])
