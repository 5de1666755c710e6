"""Evaluation outputs: metrics JSON, confusion-matrix PNG, Markdown results table.

    write_metrics_json(metrics, "runs/fold0/metrics.json")
    plot_confusion_matrix(m["confusion_matrix"], NED12, "runs/fold0/confusion.png")
    print(metrics_table_markdown({"TFW ResNet-50 GRU": m_tfw, "image CNN": m_cnn}))

Files are written atomically (`echoweave.edge.atomic`: temporary file in the same folder, then
os.replace, mode 0644), so a crash never leaves a half-written report next to a checkpoint.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from echoweave.edge.atomic import atomic_path, write_text_atomic
from echoweave.train.evaluation.checks import EvaluationInputError, check_class_names


def to_jsonable(value):
    """Convert numpy scalars/arrays, tuples, Paths and NaN into plain JSON values.

    NaN and inf become None (strict JSON has no NaN); dict keys become str.
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str):
        return value
    raise EvaluationInputError(f"cannot write {type(value).__name__} to JSON: {value!r}")


def write_metrics_json(metrics: dict, path: str | Path) -> Path:
    """Write a metrics dict as indented strict JSON, atomically.

    Args:
        metrics: output of classification_metrics / pool_folds / mcnemar_exact (numpy types ok).
        path: destination .json file; parent folders are created.

    Returns:
        The written path.
    """
    text = json.dumps(to_jsonable(metrics), indent=2, allow_nan=False) + "\n"
    return write_text_atomic(path, text)


def plot_confusion_matrix(cm, class_names, path: str | Path, normalize: bool = True,
                          title: str | None = None, dpi: int = 100) -> Path:
    """Draw a confusion matrix as a PNG (rows = true class, columns = predicted class).

    The figure grows with the number of classes and rotates the column labels, so 12 long
    NED view names stay readable. Uses the Agg canvas directly (no pyplot global state).

    Args:
        cm: K x K counts (confusion_matrix from classification_metrics).
        class_names: K names.
        path: destination .png file; parent folders are created.
        normalize: show each row as fractions of its true-class support (recall on the
            diagonal); rows with no support stay 0.
        title: optional figure title.
        dpi: resolution; the image is figure_size_inches(K) * dpi pixels.

    Returns:
        The written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(cm, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise EvaluationInputError(f"confusion matrix must be square K x K, got {counts.shape}")
    if not np.all(np.isfinite(counts)) or (counts < 0).any():
        raise EvaluationInputError("confusion matrix must hold finite non-negative counts")
    num_classes = counts.shape[0]
    names = check_class_names(class_names, num_classes)
    if normalize:
        support = counts.sum(axis=1, keepdims=True)  # (K, 1)
        shown = np.divide(counts, support, out=np.zeros_like(counts), where=support > 0)
    else:
        shown = counts

    fig = Figure(figsize=confusion_figure_size(num_classes), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(shown.max(), 1))
    fig.colorbar(image, ax=ax, shrink=0.8)
    threshold = (1 if normalize else max(shown.max(), 1)) / 2
    fontsize = 9 if num_classes <= 12 else 7
    for i in range(num_classes):
        for j in range(num_classes):
            text = f"{shown[i, j]:.2f}" if normalize else f"{int(counts[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if shown[i, j] > threshold else "black")
    ticks = np.arange(num_classes)
    ax.set_xticks(ticks, names, rotation=45, ha="right", rotation_mode="anchor", fontsize=9)
    ax.set_yticks(ticks, names, fontsize=9)
    ax.set_xlabel("predicted view")
    ax.set_ylabel("true view")
    if title:
        ax.set_title(title)
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def confusion_figure_size(num_classes: int) -> tuple[float, float]:
    """Figure size in inches for a K-class confusion matrix (room for long rotated names)."""
    side = max(5.0, 0.65 * num_classes + 3.5)
    return (side + 1.0, side)


def _fmt(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _with_ci(value, ci) -> str:
    """``0.750 [0.194, 0.994]``; the value alone without an interval; "–" without a value."""
    if value is None or ci is None:
        return _fmt(value)
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def metrics_table_markdown(rows: dict[str, dict]) -> str:
    """A Markdown results table, one row per model.

    Args:
        rows: model name -> classification_metrics dict (needs accuracy, accuracy_ci95,
            f1_macro, n; uses cohen_kappa, top3_accuracy and top3_accuracy_ci95 when present).

    Returns:
        Markdown text: model | accuracy [95% CI] | macro F1 | kappa | top-3 [95% CI] | N.
        Accuracy is top-1; top-3 is "–" with K <= 3 classes (trivially 1).
    """
    if not rows:
        raise EvaluationInputError("metrics_table_markdown got no rows")
    lines = ["| model | accuracy [95% CI] | macro F1 | kappa | top-3 [95% CI] | N |",
             "|---|---|---|---|---|---|"]
    for name, m in rows.items():
        missing = [k for k in ("accuracy", "accuracy_ci95", "f1_macro", "n") if k not in m]
        if missing:
            raise EvaluationInputError(f"row {name!r} lacks metrics {missing}")
        low, high = m["accuracy_ci95"]
        cells = [str(name).replace("|", "\\|"),
                 f"{m['accuracy']:.3f} [{low:.3f}, {high:.3f}]",
                 _fmt(m["f1_macro"]), _fmt(m.get("cohen_kappa")),
                 _with_ci(m.get("top3_accuracy"), m.get("top3_accuracy_ci95")), str(int(m["n"]))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
