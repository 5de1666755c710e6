"""Selective classification: does a model know when it does not know?

A model that flags its least certain videos instead of guessing should be right more often on
the videos it keeps. For each method this module ranks the held-out videos from most to least
certain and reports the accuracy on the most certain 50 %, 80 % and 100 % (the issue's
coverages), with an exact binomial interval, the area under the risk-coverage curve (AURC: mean
error over every coverage; lower is better; `optimal_aurc` is the best any ranking of the same
predictions could do) and, on a phantom with degraded clips (`PhantomConfig.degraded`), accuracy
and uncertainty on clean versus degraded videos.

Two kinds of certainty:

- **evidential** (a model trained with the ``reedl`` loss, EV9V's STFM): the video's windows are
  fused as the edge fuses key clips (`echoweave.edge.evidential.fuse`: Dirichlet parameters
  ``softplus(logits) + prior`` summed, argmax) and the uncertainty is the edge's
  ``Prediction.uncertainty``, ``N K prior / S`` in (0, 1];
- **softmax** (every other model, e.g. TFW): the kit's video decision (mean of the windows'
  softmax probabilities, argmax) and uncertainty ``1 - max`` of that mean.

    from echoweave.train.evaluation.selective import video_outcomes, selective_summary
    v = video_outcomes(pred, evidential_prior=0.8)        # pred from predict_windows (with logits)
    selective_summary(v["correct"], v["uncertainty"], v.get("degraded"))
"""
from __future__ import annotations

import numpy as np

from echoweave.edge.evidential import fuse
from echoweave.edge.errors import EchoweaveError
from echoweave.train.evaluation.stats import clopper_pearson_ci

#: Shares of videos kept, most certain first (the issue's table).
COVERAGES = (0.5, 0.8, 1.0)


def video_outcomes(pred: dict, evidential_prior: float | None = None) -> dict[str, np.ndarray]:
    """Per-video decision, correctness and uncertainty from window predictions.

    Args:
        pred: ``probs (N, K)``, ``labels (N,)``, ``video_ids (N,)`` per window, ``logits (N, K)``
            when ``evidential_prior`` is given, optionally ``degraded (N,)`` bool per window
            (the window's video is of poor quality).
        evidential_prior: the ``reedl`` loss's evidence prior: fuse windows evidentially;
            None: softmax mean.

    Returns:
        dict of ``(V,)`` arrays, videos in sorted id order: ``video_ids``, ``labels``,
        ``preds``, ``correct`` (bool), ``uncertainty`` (in [0, 1]; higher = less certain),
        and ``degraded`` (bool) when ``pred`` has it.

    Raises:
        EchoweaveError: evidential fusion asked for without logits.
    """
    vids = np.asarray(pred["video_ids"])
    uniq = np.unique(vids)
    if evidential_prior is not None and "logits" not in pred:
        raise EchoweaveError("evidential fusion needs the windows' logits (predict_windows returns them)")
    labels, preds, unc, bad = [], [], [], []
    for u in uniq:
        sel = vids == u
        labels.append(int(pred["labels"][sel][0]))
        if evidential_prior is not None:
            logits = np.asarray(pred["logits"])[sel]
            cls, _, k_over_s = fuse(logits, evidential_prior)
            preds.append(cls)
            unc.append(min(1.0, k_over_s * len(logits) * evidential_prior))  # the edge's N K prior / S
        else:
            mean = np.asarray(pred["probs"])[sel].mean(0)
            preds.append(int(mean.argmax()))
            unc.append(1.0 - float(mean.max()))
        if "degraded" in pred:
            bad.append(bool(np.asarray(pred["degraded"])[sel][0]))
    out = {"video_ids": uniq, "labels": np.array(labels), "preds": np.array(preds),
           "uncertainty": np.array(unc, dtype=np.float64)}
    out["correct"] = out["labels"] == out["preds"]
    if "degraded" in pred:
        out["degraded"] = np.array(bad, dtype=bool)
    return out


def annotate_windows(pred: dict, clips, evidential_prior: float | None = None) -> dict:
    """``pred`` (from ``predict_windows`` on a clip store) with what the selective table needs.

    Adds ``degraded (N,)`` per window (its clip's ``meta["quality"]``; False without one) and
    ``evidential_prior``; for an evidential model the windows' ``probs`` become their Dirichlet
    means ``alpha / sum(alpha)`` (the model's own probability under its loss) instead of a softmax.

    Args:
        pred: ``probs``, ``logits``, ``labels``, ``video_ids`` (store indices of the clips).
        clips: the store's clips (``ClipStore.clips``).
        evidential_prior: the ``reedl`` evidence prior, or None for a softmax model.
    """
    out = dict(pred)
    out["degraded"] = np.array([bool(clips[int(i)].meta.get("quality", {}).get("degraded", False))
                                for i in pred["video_ids"]], dtype=bool)
    out["evidential_prior"] = evidential_prior
    if evidential_prior is not None:
        alpha = np.logaddexp(0.0, np.asarray(pred["logits"], dtype=np.float64)) + evidential_prior
        out["probs"] = alpha / alpha.sum(1, keepdims=True)
    return out


def selective_table(per_method: dict[str, list[dict]], methods) -> dict[str, dict]:
    """`selective_summary` of each named method over its pooled held-out folds.

    Args:
        per_method: method name -> per-fold window predictions (`annotate_windows` output).
        methods: the methods to tabulate (absent ones are skipped).
    """
    table = {}
    for name in methods:
        if name not in per_method:
            continue
        folds = per_method[name]
        prior = folds[0].get("evidential_prior")
        merged = {k: np.concatenate([f[k] for f in folds]) for k in ("labels", "probs", "logits", "video_ids", "degraded")}
        v = video_outcomes(merged, prior)
        table[name] = {"certainty": "softmax" if prior is None else "evidential",
                       **selective_summary(v["correct"], v["uncertainty"], v["degraded"])}
    return table


def risk_coverage(correct: np.ndarray, uncertainty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(coverage (V,), accuracy (V,))`` when keeping the ``1 .. V`` most certain videos.

    Ties in uncertainty are broken by video order (a stable sort), so the curve is deterministic.
    """
    correct = np.asarray(correct, dtype=bool)
    order = np.argsort(np.asarray(uncertainty, dtype=np.float64), kind="stable")
    kept = np.arange(1, len(correct) + 1)
    return kept / len(correct), np.cumsum(correct[order]) / kept


def selective_summary(correct, uncertainty, degraded=None, coverages=COVERAGES) -> dict:
    """Accuracy on the most certain share of videos, AURC and the clean/degraded split.

    Args:
        correct: ``(V,)`` bool, the video decision was right.
        uncertainty: ``(V,)`` higher = less certain.
        degraded: ``(V,)`` bool or None: the video is of poor quality.
        coverages: shares of videos kept.

    Returns:
        ``{"videos", "coverage": {"0.5": {"n", "accuracy", "accuracy_ci95"}, ...}, "aurc",
        "optimal_aurc", "quality": {"clean": {...}, "degraded": {...}, "degraded_share_of_
        abstained_at_0.5"}}`` (``quality`` only with ``degraded``).
    """
    correct = np.asarray(correct, dtype=bool)
    uncertainty = np.asarray(uncertainty, dtype=np.float64)
    if correct.shape != uncertainty.shape or correct.ndim != 1 or not len(correct):
        raise EchoweaveError(f"selective_summary needs equal non-empty 1-D arrays, got {correct.shape} and "
                             f"{uncertainty.shape}")
    n = len(correct)
    order = np.argsort(uncertainty, kind="stable")
    table = {}
    for c in coverages:
        k = max(1, int(np.ceil(c * n - 1e-9)))
        right = int(correct[order[:k]].sum())
        table[f"{c:g}"] = {"n": k, "accuracy": right / k, "accuracy_ci95": list(clopper_pearson_ci(right, k))}
    _, acc = risk_coverage(correct, uncertainty)
    ideal = np.cumsum(np.sort(correct)[::-1]) / np.arange(1, n + 1)  # every right video first
    out = {"videos": n, "coverage": table, "aurc": float(np.mean(1 - acc)), "optimal_aurc": float(np.mean(1 - ideal))}
    if degraded is not None:
        degraded = np.asarray(degraded, dtype=bool)
        groups = {}
        for name, sel in (("clean", ~degraded), ("degraded", degraded)):
            m = int(sel.sum())
            right = int(correct[sel].sum())
            groups[name] = {"n": m, "accuracy": right / m if m else None,
                            "accuracy_ci95": list(clopper_pearson_ci(right, m)) if m else None,
                            "mean_uncertainty": float(uncertainty[sel].mean()) if m else None}
        dropped = order[int(np.ceil(0.5 * n - 1e-9)):]
        groups["degraded_share_of_abstained_at_0.5"] = float(degraded[dropped].mean()) if len(dropped) else None
        out["quality"] = groups
    return out


def selective_markdown(table: dict[str, dict], coverages=COVERAGES) -> list[str]:
    """Markdown lines of the selective-classification table, one row per method."""
    cols = [f"{c:g}" for c in coverages]
    quality = any("quality" in r for r in table.values())
    head = ["method", "certainty"] + [f"acc @ {float(c):.0%} most certain" for c in cols] + ["AURC (optimal)"]
    if quality:
        head += ["clean acc (n)", "degraded acc (n)", "mean unc. clean / degraded", "degraded share of abstained @ 50%"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in table.items():
        row = [name, r["certainty"]]
        for c in cols:
            cell = r["coverage"][c]
            lo, hi = cell["accuracy_ci95"]
            row.append(f"{cell['accuracy']:.3f} [{lo:.2f}, {hi:.2f}] (n={cell['n']})")
        row.append(f"{r['aurc']:.3f} ({r['optimal_aurc']:.3f})")
        if quality and "quality" in r:
            q = r["quality"]
            for g in ("clean", "degraded"):
                row.append("-" if q[g]["accuracy"] is None else f"{q[g]['accuracy']:.3f} ({q[g]['n']})")
            row.append(" / ".join("-" if q[g]["mean_uncertainty"] is None else f"{q[g]['mean_uncertainty']:.3f}"
                                  for g in ("clean", "degraded")))
            share = q["degraded_share_of_abstained_at_0.5"]
            row.append("-" if share is None else f"{share:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    return lines
