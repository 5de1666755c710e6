"""Statistics on top of predictions: exact confidence intervals, McNemar's test, fold spread.

All tests are the exact (binomial) versions from scipy, which stay valid for the small
per-class and per-fold counts of echo datasets where normal approximations do not:

    clopper_pearson_ci(8, 10)               # (0.4439, 0.9748)
    mcnemar_exact(labels, pred_a, pred_b)   # {"b": 1, "c": 6, "p": 0.125, "n": ...}
"""
from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from echoweave.train.evaluation.checks import EvaluationInputError, check_labels, check_same_length


def clopper_pearson_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial (Clopper–Pearson) confidence interval of a proportion k/n.

    Args:
        k: number of successes (e.g. correctly classified clips), 0 <= k <= n.
        n: number of trials, n >= 1.
        confidence: confidence level of the two-sided interval.

    Returns:
        (low, high) bounds of the interval.
    """
    k, n = int(k), int(n)
    if n < 1:
        raise EvaluationInputError(f"confidence interval needs n >= 1 trials, got n={n}")
    if not 0 <= k <= n:
        raise EvaluationInputError(f"successes k={k} must lie in [0, n={n}]")
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def mcnemar_exact(labels, pred_a, pred_b) -> dict:
    """McNemar's exact test: do two models' error rates differ on the same clips?

    Only discordant pairs carry information: b = clips A gets right and B gets wrong,
    c = clips A gets wrong and B gets right. Under H0 (equal error rates) b ~ Binomial(b + c, 0.5);
    the two-sided p-value is `binomtest(min(b, c), b + c, 0.5).pvalue` and 1.0 when b + c == 0.

    Args:
        labels: true class ids, shape (N,).
        pred_a: model A's predicted class ids, shape (N,).
        pred_b: model B's predicted class ids on the same clips, shape (N,).

    Returns:
        dict with b, c, p (two-sided exact p-value), n, accuracy_a, accuracy_b.
    """
    y = check_labels(labels, name="labels")
    a = check_labels(pred_a, name="pred_a")
    bb = check_labels(pred_b, name="pred_b")
    n = check_same_length(labels=y, pred_a=a, pred_b=bb)
    right_a, right_b = a == y, bb == y
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    p = 1.0 if b + c == 0 else float(binomtest(min(b, c), b + c, 0.5).pvalue)
    return {"b": b, "c": c, "p": p, "n": int(n),
            "accuracy_a": float(right_a.mean()), "accuracy_b": float(right_b.mean())}


def mean_std(values) -> dict:
    """Mean and sample standard deviation (ddof=1) of per-fold values.

    Args:
        values: one number per fold.

    Returns:
        dict with mean, std (None for a single fold, where it is undefined) and n.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise EvaluationInputError(f"mean_std needs a non-empty 1-D list, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise EvaluationInputError("mean_std got NaN or inf values")
    std = float(np.std(arr, ddof=1)) if arr.size > 1 else None
    return {"mean": float(arr.mean()), "std": std, "n": int(arr.size)}
