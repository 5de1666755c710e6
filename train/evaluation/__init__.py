"""Evaluation and statistics for view classifiers: numpy arrays in, dicts and files out.

Independent of any model or framework (no torch import). Modules:
    checks   input validation and EvaluationInputError
    stats    Clopper–Pearson interval, McNemar's exact test, mean ± std over folds
    metrics  clip/video-level classification metrics, K-fold pooling
    report   metrics JSON, confusion-matrix PNG, Markdown results table
"""
from echoweave.train.evaluation.checks import EvaluationInputError
from echoweave.train.evaluation.metrics import (
    aggregate_by_video,
    classification_metrics,
    clip_and_video_metrics,
    pool_folds,
)
from echoweave.train.evaluation.report import (
    metrics_table_markdown,
    plot_confusion_matrix,
    write_metrics_json,
)
from echoweave.train.evaluation.stats import clopper_pearson_ci, mcnemar_exact, mean_std

__all__ = [
    "EvaluationInputError",
    "aggregate_by_video",
    "classification_metrics",
    "clip_and_video_metrics",
    "clopper_pearson_ci",
    "mcnemar_exact",
    "mean_std",
    "metrics_table_markdown",
    "plot_confusion_matrix",
    "pool_folds",
    "write_metrics_json",
]
