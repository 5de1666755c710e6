"""Classification metrics at clip level and video level, and pooling over K folds.

Clip level = one prediction per sampled window (clip); video level = the mean of a video's
clip probabilities (as torchvision's video_classification reference reports both). Inputs are
numpy arrays from any model; outputs are plain dicts of Python numbers (JSON-ready):

    probs_v, labels_v, ids_v = aggregate_by_video(probs, video_ids, labels)
    m = classification_metrics(labels_v, probs_v, NED12)
    pooled = pool_folds([{"labels": y0, "probs": p0, "video_ids": v0}, ...], NED12)
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from echoweave.train.evaluation.checks import (
    EvaluationInputError,
    check_class_names,
    check_labels,
    check_probs,
    check_same_length,
)
from echoweave.train.evaluation.stats import clopper_pearson_ci, mean_std


def aggregate_by_video(probs, video_ids, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average clip probabilities per video.

    Args:
        probs: clip probabilities, shape (N, K).
        video_ids: video id of each clip (str or int), shape (N,).
        labels: class id of each clip, shape (N,); all clips of a video must share it.

    Returns:
        (probs_v (V, K), labels_v (V,), ids_v (V,)), videos in order of first appearance.
    """
    p = check_probs(probs)
    y = check_labels(labels, num_classes=p.shape[1])
    ids = np.asarray(video_ids)
    if ids.ndim != 1:
        raise EvaluationInputError(f"video_ids must be 1-D (N,), got shape {ids.shape}")
    check_same_length(probs=p, video_ids=ids, labels=y)
    uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    # np.unique sorts; reorder so video v is the v-th distinct id seen (stable, readable output).
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    video_of_clip = rank[inverse]  # (N,) video index per clip
    num_videos = uniq.size
    sums = np.zeros((num_videos, p.shape[1]))
    np.add.at(sums, video_of_clip, p)
    counts = np.bincount(video_of_clip, minlength=num_videos)  # (V,)
    labels_v = y[first[order]]
    inconsistent = y != labels_v[video_of_clip]
    if inconsistent.any():
        bad_video = video_of_clip[np.argmax(inconsistent)]
        found = np.unique(y[video_of_clip == bad_video]).tolist()
        raise EvaluationInputError(
            f"video {uniq[order][bad_video].item()!r} has clips with different labels {found}")
    return sums / counts[:, None], labels_v, uniq[order]


def classification_metrics(labels, probs, class_names) -> dict:
    """All the numbers a results table needs, from true labels and predicted probabilities.

    Predictions are `argmax(probs)` (the first class wins ties, as torch.argmax). Top-k uses
    sklearn's `top_k_accuracy_score`, which breaks ties differently (towards the later class),
    so top-1 can differ from accuracy only when a row has tied maxima.

    Args:
        labels: true class ids, shape (N,).
        probs: predicted probabilities, shape (N, K).
        class_names: K names; index = class id.

    Returns:
        dict with n, num_classes, class_names, accuracy, accuracy_ci95 [low, high]
        (Clopper–Pearson), precision/recall/f1 _macro and _weighted, top1_accuracy,
        top3_accuracy (None when K <= 3, where it is trivially 1) and top3_accuracy_ci95
        (Clopper–Pearson, None with it), cohen_kappa (None when
        undefined, e.g. a single class in labels and predictions), confusion_matrix
        (K x K list, rows = true, columns = predicted), per_class {name: precision, recall,
        f1, support}.
    """
    p = check_probs(probs)
    num_classes = p.shape[1]
    y = check_labels(labels, num_classes=num_classes)
    n = check_same_length(labels=y, probs=p)
    names = check_class_names(class_names, num_classes)
    pred = p.argmax(axis=1)
    class_ids = np.arange(num_classes)

    correct = int(np.sum(pred == y))
    metrics = {"n": int(n), "num_classes": num_classes, "class_names": names,
               "accuracy": float(accuracy_score(y, pred)),
               "accuracy_ci95": list(clopper_pearson_ci(correct, n))}
    for average in ("macro", "weighted"):
        prec, rec, f1, _ = precision_recall_fscore_support(
            y, pred, labels=class_ids, average=average, zero_division=0)
        metrics.update({f"precision_{average}": float(prec), f"recall_{average}": float(rec),
                        f"f1_{average}": float(f1)})
    metrics["top1_accuracy"] = _top_k_accuracy(y, p, 1)
    metrics["top3_accuracy"] = top3 = _top_k_accuracy(y, p, 3)
    # sklearn returns the fraction; the count of hits is that times n, exactly.
    metrics["top3_accuracy_ci95"] = None if top3 is None else list(clopper_pearson_ci(round(top3 * n), n))
    with warnings.catch_warnings():
        # One shared label (e.g. a one-class toy) makes kappa 0/0; we report None instead.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        kappa = cohen_kappa_score(y, pred, labels=class_ids, replace_undefined_by=np.nan)
    metrics["cohen_kappa"] = None if np.isnan(kappa) else float(kappa)
    metrics["confusion_matrix"] = confusion_matrix(y, pred, labels=class_ids).tolist()
    prec, rec, f1, support = precision_recall_fscore_support(
        y, pred, labels=class_ids, average=None, zero_division=0)
    metrics["per_class"] = {
        name: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
               "support": int(support[i])}
        for i, name in enumerate(names)}
    return metrics


def top_k_accuracy(labels, probs, k: int) -> float | None:
    """Fraction of rows whose true class is among the ``k`` most probable; None when k >= K.

    Args:
        labels: true class ids, shape (N,).
        probs: predicted probabilities, shape (N, K).
        k: how many of the most probable classes count as a hit (3 for top-3).
    """
    p = check_probs(probs)
    y = check_labels(labels, num_classes=p.shape[1])
    check_same_length(labels=y, probs=p)
    return _top_k_accuracy(y, p, k)


def _top_k_accuracy(y: np.ndarray, p: np.ndarray, k: int) -> float | None:
    """sklearn top-k accuracy over all K classes; None when k >= K (a meaningless 1.0)."""
    num_classes = p.shape[1]
    if k >= num_classes:
        return None
    # sklearn treats K=2 as the binary case and wants the positive-class score only.
    score = p[:, 1] if num_classes == 2 else p
    return float(top_k_accuracy_score(y, score, k=k, labels=np.arange(num_classes)))


def clip_and_video_metrics(labels, probs, class_names, video_ids=None) -> dict:
    """Clip-level metrics and, when video ids are given, video-level metrics.

    Args:
        labels: true class ids per clip, shape (N,).
        probs: clip probabilities, shape (N, K).
        class_names: K class names.
        video_ids: video id per clip, shape (N,), or None to skip the video level.

    Returns:
        {"clip": metrics, "video": metrics or None}.
    """
    out = {"clip": classification_metrics(labels, probs, class_names), "video": None}
    if video_ids is not None:
        probs_v, labels_v, _ = aggregate_by_video(probs, video_ids, labels)
        out["video"] = classification_metrics(labels_v, probs_v, class_names)
    return out


def pool_folds(fold_results: list[dict], class_names=None) -> dict:
    """Metrics of K-fold cross-validation: per fold, pooled over held-out folds, mean ± std.

    Pooled metrics concatenate every fold's held-out predictions (each clip is scored once,
    by the model that did not see it); the video level averages clips within each fold, and a
    video id seen in two folds is an error because held-out folds must be disjoint.

    Args:
        fold_results: one dict per fold with "labels" (N_i,), "probs" (N_i, K) and optionally
            "video_ids" (N_i,) (all folds or none).
        class_names: K names; defaults to "0" .. "K-1".

    Returns:
        {"num_folds", "folds": [{"clip", "video"}...], "pooled": {"clip", "video"},
        "summary": {"clip"|"video": {"accuracy": {mean, std, n}, "f1_macro": {...},
        "top3_accuracy": {...} (when K > 3)}}}; "video" entries are None without video ids.
    """
    if not fold_results:
        raise EvaluationInputError("pool_folds got no folds")
    for i, fold in enumerate(fold_results):
        missing = {"labels", "probs"} - set(fold)
        if missing:
            raise EvaluationInputError(f"fold {i} lacks {sorted(missing)}")
    probs = [check_probs(f["probs"], name=f"fold {i} probs") for i, f in enumerate(fold_results)]
    num_classes = probs[0].shape[1]
    if any(p.shape[1] != num_classes for p in probs):
        raise EvaluationInputError(
            f"folds disagree on the number of classes: {[p.shape[1] for p in probs]}")
    labels = [check_labels(f["labels"], num_classes, name=f"fold {i} labels")
              for i, f in enumerate(fold_results)]
    names = [str(i) for i in range(num_classes)] if class_names is None else class_names
    has_video = [f.get("video_ids") is not None for f in fold_results]
    if any(has_video) and not all(has_video):
        raise EvaluationInputError("give video_ids for every fold or for none")
    video_ids = [f["video_ids"] for f in fold_results] if all(has_video) else None
    if video_ids is not None:
        _check_disjoint_videos(video_ids)

    folds = [clip_and_video_metrics(y, p, names, None if video_ids is None else video_ids[i])
             for i, (y, p) in enumerate(zip(labels, probs))]
    pooled = {"clip": classification_metrics(np.concatenate(labels), np.concatenate(probs),
                                             names), "video": None}
    if video_ids is not None:
        per_fold = [aggregate_by_video(p, v, y) for y, p, v in zip(labels, probs, video_ids)]
        pooled["video"] = classification_metrics(
            np.concatenate([lv for _, lv, _ in per_fold]),
            np.concatenate([pv for pv, _, _ in per_fold]), names)
    summary = {level: None if folds[0][level] is None else {
        key: mean_std([f[level][key] for f in folds]) for key in ("accuracy", "f1_macro", "top3_accuracy")
        if folds[0][level][key] is not None}
        for level in ("clip", "video")}
    return {"num_folds": len(folds), "folds": folds, "pooled": pooled, "summary": summary}


def _check_disjoint_videos(video_ids: list) -> None:
    """Raise if any video id occurs in more than one fold (a leak between held-out folds)."""
    seen: dict = {}
    for fold, ids in enumerate(video_ids):
        for vid in np.unique(np.asarray(ids)).tolist():
            if vid in seen:
                raise EvaluationInputError(
                    f"video {vid!r} appears in folds {seen[vid]} and {fold}: "
                    "held-out folds must be disjoint")
            seen[vid] = fold
