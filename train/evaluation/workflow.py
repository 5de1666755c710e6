"""Workflow analysis of full-length scans: predicted timelines against their ground truth.

    preds = read_predictions("tfw.json")                 # `echoweave classify ... --json` output
    scans = pair_with_truth(preds, truth_dir=None)       # each recording's <stem>.truth.json
    report = compare_workflows(scans, tolerance_s=1.0, min_iou=0.5)
    report["durations"]["pooled"]["pearson_r"]

What is compared (after the seed paper, Sharma et al., "workflow statistics": the type,
duration and order of views per scan, and the correlation of predicted with manually labelled
durations):

- **Durations.** Seconds per label per scan, where a label is a class name or ``background``
  (no standard view; in predictions the windows the model is unsure of, see
  `echoweave.edge.timeline`). Pearson's r and Spearman's rho with their two-sided p-values
  (scipy) are computed (a) per label across scans, (b) pooled over every (scan, label) pair
  (the headline number), (c) over the labels' mean durations across scans (one point per label,
  the seed's comparison of category durations). Labels seen neither in the truth nor in the
  predictions of any scan are left out; a label absent from a scan has duration 0 there.
- **Workflow statistics** per label over scans, as the seed reports them: mean and standard
  deviation of the duration and the mean share of the scan with its 95% t-interval, true and
  predicted; per scan: view transitions, visits, whether the order of first appearance agrees.
- **Segments.** A predicted segment matches a true segment of the same label when both its
  boundaries are within ``tolerance_s`` of the true ones, or when their intersection over union
  is at least ``min_iou``; matches are one-to-one, made greedily by IoU (largest first).
  Precision = matched / predicted segments, recall = matched / true segments, F1 their
  harmonic mean; given over all labels and over the standard views alone (background left out).

Time alignment: a timeline's first segment starts at its first window's time, which is the
*last* frame of that window, so it is extended back to 0, and the last one is cut at the
recording's end; a timeline that does not span the recording within ``max(1 s, 5 %)`` of its
length is refused as not belonging to it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from echoweave.edge.timeline import BACKGROUND, Segment, is_background, scan_workflow
from echoweave.train.data.scans import ScanInputError, ScanTruth, read_json_file, read_truth, truth_path

__all__ = ["ScanPair", "ScanPrediction", "best_model", "compare_workflows", "correlation", "duration_table",
           "match_segments", "pair_with_truth", "plot_durations", "read_predictions", "segment_scores",
           "workflow_markdown"]

TARGET_RHO = 0.95


@dataclass
class ScanPrediction:
    """The predicted timeline of one recording, as `echoweave classify --json` wrote it.

    Attributes:
        source: the prediction file.
        model: the model's name (model id and artifact).
        recording: the recording's path, as classify saw it.
        duration_s: the recording's length.
        segments: the timeline's segments.
    """

    source: Path
    model: str
    recording: str
    duration_s: float
    segments: list[Segment]


@dataclass
class ScanPair:
    """A prediction and the truth of the same recording, on the same time axis."""

    prediction: ScanPrediction
    truth: ScanTruth

    @property
    def name(self) -> str:
        return Path(self.prediction.recording).name


def read_predictions(path: str | Path) -> list[ScanPrediction]:
    """Read the timelines of an ``echoweave classify PATH --model M --json`` document.

    Raises:
        ScanInputError: the file is missing, not a classify JSON document, holds no recording,
            or a recording failed or has no (or an empty) timeline; the message names the file
            and the recording.
    """
    path = Path(path)
    doc = read_json_file(path, "prediction file", "; write it with `echoweave classify SCANS --model M --json > FILE`")
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list) or not isinstance(doc.get("model"), dict):
        raise ScanInputError(f"{path}: not an `echoweave classify --json` document (no model and results)")
    if not doc["results"]:
        raise ScanInputError(f"{path}: empty prediction: no recordings in it")
    model = f"{doc['model'].get('model_id', '?')} {doc['model'].get('artifact', '')}".strip()
    out = []
    for r in doc["results"]:
        where = f"{path}: {r.get('path', '?')}"
        if not r.get("ok", False):
            raise ScanInputError(f"{where}: classification failed ({r.get('error')})")
        segs = (r.get("timeline") or {}).get("segments")
        if not segs:
            raise ScanInputError(f"{where}: empty prediction: no timeline segments (classify gives timelines to "
                                 "recordings of at least --timeline_min_s seconds)")
        try:
            segments = [Segment(str(s["view"]), int(s["class_id"]), float(s["start_s"]), float(s["end_s"]),
                                int(s.get("windows", 0)), float(s.get("mean_confidence", 0.0))) for s in segs]
        except (KeyError, TypeError, ValueError) as exc:
            raise ScanInputError(f"{where}: malformed timeline segment ({type(exc).__name__}: {exc})") from None
        out.append(ScanPrediction(path, model, str(r["path"]), float(r.get("duration_s", segments[-1].end_s)),
                                  segments))
    return out


def _aligned(segments: list[Segment], duration_s: float) -> list[Segment]:
    """The timeline on the truth's time axis: first segment from 0, last one cut at the end."""
    out = [Segment(s.view, s.class_id, s.start_s, s.end_s, s.windows, s.mean_confidence) for s in segments]
    out[0].start_s = 0.0
    while len(out) > 1 and out[-1].start_s >= duration_s:
        out.pop()
    out[-1].end_s = duration_s
    return out


def pair_with_truth(predictions: list[ScanPrediction], truth_dir: str | Path | None = None,
                    classes: list[str] | None = None) -> list[ScanPair]:
    """Find and check the ground truth of every predicted recording.

    Args:
        predictions: from `read_predictions`.
        truth_dir: folder holding the ``<stem>.truth.json`` files (None = beside each recording).
        classes: the model's class names (a true view outside them is an error).

    Raises:
        ScanInputError: a truth file is missing, describes another recording, or the timeline
            does not span the recording; the message names the files.
    """
    pairs, seen = [], {}
    for p in predictions:
        rec = Path(p.recording)
        tpath = Path(truth_dir) / truth_path(rec).name if truth_dir else truth_path(rec)
        if not tpath.is_file():
            raise ScanInputError(f"{tpath}: ground-truth file not found for {rec} (predicted in {p.source})")
        truth = read_truth(tpath, classes)
        if truth.recording != rec.name:
            raise ScanInputError(f"{tpath}: describes {truth.recording}, not {rec.name} (predicted in {p.source})")
        span = p.segments[-1].end_s - p.segments[0].start_s
        if abs(p.duration_s - truth.duration_s) > max(1.0, 0.05 * truth.duration_s) or \
                abs(span - truth.duration_s) > max(1.0, 0.05 * truth.duration_s):
            raise ScanInputError(f"{tpath}: the recording lasts {truth.duration_s:.2f} s but {p.source} has "
                                 f"{rec.name} at {p.duration_s:.2f} s with a timeline of {span:.2f} s: not the same "
                                 "recording")
        if rec.name in seen:
            raise ScanInputError(f"{p.source}: {rec.name} is predicted twice ({seen[rec.name]} and {rec})")
        seen[rec.name] = rec
        p = ScanPrediction(p.source, p.model, p.recording, p.duration_s, _aligned(p.segments, truth.duration_s))
        pairs.append(ScanPair(p, truth))
    return pairs


def correlation(x, y) -> dict:
    """Pearson's r and Spearman's rho of ``x`` and ``y`` with two-sided p-values (scipy.stats).

    Returns:
        ``{"n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p"}``; the four statistics
        are None when undefined (fewer than 3 points, or a constant side).
    """
    from scipy.stats import pearsonr, spearmanr

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    out = {"n": int(len(x)), "pearson_r": None, "pearson_p": None, "spearman_rho": None, "spearman_p": None}
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    r = pearsonr(x, y)
    rho = spearmanr(x, y)
    return {**out, "pearson_r": float(r.statistic), "pearson_p": float(r.pvalue),
            "spearman_rho": float(rho.statistic), "spearman_p": float(rho.pvalue)}


def _iou(a: Segment, b: Segment) -> float:
    inter = max(0.0, min(a.end_s, b.end_s) - max(a.start_s, b.start_s))
    return inter / (max(a.end_s, b.end_s) - min(a.start_s, b.start_s))


def match_segments(pred: list[Segment], true: list[Segment], tolerance_s: float, min_iou: float) -> list[tuple[int, int]]:
    """One-to-one matches ``(pred index, true index)``: same label, and both boundaries within
    ``tolerance_s`` or IoU >= ``min_iou``; greedy by IoU, largest first (ties: earlier first)."""
    candidates = []
    for i, p in enumerate(pred):
        for j, t in enumerate(true):
            if p.view != t.view:
                continue
            iou = _iou(p, t)
            close = abs(p.start_s - t.start_s) <= tolerance_s and abs(p.end_s - t.end_s) <= tolerance_s
            if close or iou >= min_iou:
                candidates.append((-iou, i, j))
    used_p, used_t, matches = set(), set(), []
    for _, i, j in sorted(candidates):
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            matches.append((i, j))
    return sorted(matches)


def segment_scores(pairs: list[ScanPair], tolerance_s: float, min_iou: float, views_only: bool = False) -> dict:
    """Segment-level precision, recall and F1 over all scans (see the module docstring).

    Args:
        views_only: leave background segments out of both sides.

    Returns:
        ``{"matched", "predicted", "true", "precision", "recall", "f1"}`` (None where a count is 0).
    """
    tp = n_pred = n_true = 0
    for pair in pairs:
        pred = [s for s in pair.prediction.segments if not (views_only and is_background(s))]
        true = [s for s in pair.truth.segments if not (views_only and is_background(s))]
        tp += len(match_segments(pred, true, tolerance_s, min_iou))
        n_pred += len(pred)
        n_true += len(true)
    precision = tp / n_pred if n_pred else None
    recall = tp / n_true if n_true else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if n_pred and n_true else None)
    return {"matched": tp, "predicted": n_pred, "true": n_true, "precision": precision, "recall": recall, "f1": f1}


def _label(s: Segment) -> str:
    return BACKGROUND if is_background(s) else s.view


def duration_table(pairs: list[ScanPair], labels: list[str] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Seconds per label per scan.

    Returns:
        ``(labels, true (S, L), predicted (S, L))``; labels in order of first appearance in the
        truth, then labels only predicted, background last.
    """
    if labels is None:
        seen = [_label(s) for p in pairs for s in p.truth.segments] + \
               [_label(s) for p in pairs for s in p.prediction.segments]
        labels = [x for x in dict.fromkeys(seen) if x != BACKGROUND] + ([BACKGROUND] if BACKGROUND in seen else [])
    col = {x: k for k, x in enumerate(labels)}
    true, pred = np.zeros((len(pairs), len(labels))), np.zeros((len(pairs), len(labels)))
    for i, p in enumerate(pairs):
        for table, segs in ((true, p.truth.segments), (pred, p.prediction.segments)):
            for s in segs:
                table[i, col[_label(s)]] += s.duration_s
    return labels, true, pred


def _mean_ci(x: np.ndarray) -> dict:
    """Mean, standard deviation and the 95% t-interval of the mean."""
    from scipy.stats import t as student_t

    n = len(x)
    mean = float(np.mean(x))
    sd = float(np.std(x, ddof=1)) if n > 1 else 0.0
    half = float(student_t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "ci95": [mean - half, mean + half]}


def _edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _per_scan(pair: ScanPair) -> dict:
    wt, wp = scan_workflow(pair.truth.segments), scan_workflow(pair.prediction.segments)
    seq_t, seq_p = wt["visit_sequence"], wp["visit_sequence"]
    return {"recording": pair.name, "truth": str(pair.truth.path), "duration_s": pair.truth.duration_s,
            "true_view_transitions": max(len(seq_t) - 1, 0), "predicted_view_transitions": max(len(seq_p) - 1, 0),
            "true_visits": len(seq_t), "predicted_visits": len(seq_p),
            "true_background_s": wt["background_s"], "predicted_background_s": wp["background_s"],
            "order_agrees": wt["order"] == wp["order"], "visit_edit_distance": _edit_distance(seq_t, seq_p),
            "true_order": wt["order"], "predicted_order": wp["order"]}


def compare_workflows(pairs: list[ScanPair], tolerance_s: float = 1.0, min_iou: float = 0.5) -> dict:
    """Compare the predicted workflows of a set of scans with their truth (one model).

    Returns:
        A JSON-ready dict: ``model``, ``scans``, ``labels``, ``durations`` (``pooled``,
        ``class_means``, ``per_label`` correlations and the seconds table), ``statistics`` (per
        label mean/sd seconds and mean share with 95% CI, true and predicted), ``segments``
        (``all`` and ``views``), ``per_scan`` and ``target`` (pooled r >= 0.95 and >= 10 scans).
    """
    if not pairs:
        raise ScanInputError("no scans to compare")
    labels, true, pred = duration_table(pairs)
    totals = np.array([p.truth.duration_s for p in pairs])[:, None]
    per_label = {x: {**correlation(true[:, k], pred[:, k]), "true_s": true[:, k].tolist(),
                     "predicted_s": pred[:, k].tolist()} for k, x in enumerate(labels)}
    stats = {x: {"true_s": _mean_ci(true[:, k]), "predicted_s": _mean_ci(pred[:, k]),
                 "true_share": _mean_ci(true[:, k] / totals[:, 0]), "predicted_share": _mean_ci(pred[:, k] / totals[:, 0])}
             for k, x in enumerate(labels)}
    pooled = correlation(true.ravel(), pred.ravel())
    views = [k for k, x in enumerate(labels) if x != BACKGROUND]
    per_scan = [_per_scan(p) for p in pairs]
    return {
        "model": pairs[0].prediction.model, "predictions": str(pairs[0].prediction.source), "scans": len(pairs),
        "recordings": [p.name for p in pairs], "labels": labels,
        "params": {"tolerance_s": tolerance_s, "min_iou": min_iou},
        "durations": {"pooled": pooled, "pooled_views": correlation(true[:, views].ravel(), pred[:, views].ravel()),
                      "class_means": correlation(true.mean(axis=0), pred.mean(axis=0)), "per_label": per_label,
                      "mean_abs_error_s": float(np.abs(true - pred).mean())},
        "statistics": stats,
        "segments": {"all": segment_scores(pairs, tolerance_s, min_iou),
                     "views": segment_scores(pairs, tolerance_s, min_iou, views_only=True)},
        "workflow": {"order_agreement": float(np.mean([s["order_agrees"] for s in per_scan])),
                     "mean_visit_edit_distance": float(np.mean([s["visit_edit_distance"] for s in per_scan])),
                     "mean_abs_transition_error": float(np.mean([abs(s["true_view_transitions"] -
                                                                     s["predicted_view_transitions"]) for s in per_scan]))},
        "per_scan": per_scan,
        "target": {"pooled_pearson_r_at_least": TARGET_RHO, "scans_at_least": 10,
                   "met": bool(pooled["pearson_r"] is not None and pooled["pearson_r"] >= TARGET_RHO and len(pairs) >= 10)},
    }


def _fmt(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _fmt_p(p) -> str:
    return "n/a" if p is None else f"{p:.2g}"


def best_model(reports: list[dict]) -> dict:
    """The report with the highest pooled Pearson r (undefined r counts as lowest)."""
    return max(reports, key=lambda r: -2.0 if r["durations"]["pooled"]["pearson_r"] is None
               else r["durations"]["pooled"]["pearson_r"])


def workflow_markdown(reports: list[dict], plot_name: str = "") -> str:
    """A Markdown report: one summary row per model (best first), then the best model's details."""
    ranked = sorted(reports, key=lambda r: r is not best_model(reports))
    best = ranked[0]
    seg = best["segments"]
    lines = ["# Full-length scan workflow: predicted against true", "",
             f"{best['scans']} scans; a label is a view or `background` (predicted: windows below the model's "
             "uncertainty threshold). Durations in seconds per label per scan; r = Pearson, rho = Spearman "
             f"(two-sided p). Segment match: same label and both boundaries within {best['params']['tolerance_s']} s, "
             f"or IoU >= {best['params']['min_iou']} (one-to-one, greedy by IoU).", "",
             "| model | pooled r (p) | pooled rho (p) | views-only r | r of class means | segment P / R / F1 "
             "(views) | order agrees | mean abs. error s | target met |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in ranked:
        d, s = r["durations"], r["segments"]["views"]
        lines.append(f"| {r['model']}{' (best)' if r is best and len(ranked) > 1 else ''} | "
                     f"{_fmt(d['pooled']['pearson_r'])} ({_fmt_p(d['pooled']['pearson_p'])}) | "
                     f"{_fmt(d['pooled']['spearman_rho'])} ({_fmt_p(d['pooled']['spearman_p'])}) | "
                     f"{_fmt(d['pooled_views']['pearson_r'])} | {_fmt(d['class_means']['pearson_r'])} | "
                     f"{_fmt(s['precision'], 2)} / {_fmt(s['recall'], 2)} / {_fmt(s['f1'], 2)} | "
                     f"{r['workflow']['order_agreement']:.2f} | {d['mean_abs_error_s']:.2f} | "
                     f"{'yes' if r['target']['met'] else 'no'} |")
    lines += ["", f"Target: pooled r >= {TARGET_RHO} over >= 10 unseen scans.", "",
              f"## Per label: {best['model']}", "",
              "| label | r (p) | rho (p) | true s, mean ± sd | predicted s, mean ± sd | true share % [95% CI] | "
              "predicted share % [95% CI] |", "|---|---|---|---|---|---|---|"]
    for label in best["labels"]:
        c, st = best["durations"]["per_label"][label], best["statistics"][label]
        ts, ps = st["true_share"], st["predicted_share"]
        lines.append(f"| {label} | {_fmt(c['pearson_r'])} ({_fmt_p(c['pearson_p'])}) | "
                     f"{_fmt(c['spearman_rho'])} ({_fmt_p(c['spearman_p'])}) | "
                     f"{st['true_s']['mean']:.1f} ± {st['true_s']['sd']:.1f} | "
                     f"{st['predicted_s']['mean']:.1f} ± {st['predicted_s']['sd']:.1f} | "
                     f"{100 * ts['mean']:.1f} [{100 * ts['ci95'][0]:.1f}, {100 * ts['ci95'][1]:.1f}] | "
                     f"{100 * ps['mean']:.1f} [{100 * ps['ci95'][0]:.1f}, {100 * ps['ci95'][1]:.1f}] |")
    a = seg["all"]
    lines += ["", f"Segments over all labels (background included): P {_fmt(a['precision'], 2)}, "
              f"R {_fmt(a['recall'], 2)}, F1 {_fmt(a['f1'], 2)} ({a['matched']} matched of {a['predicted']} "
              f"predicted, {a['true']} true).", "", "## Per scan", "",
              "| recording | view transitions true / predicted | visits true / predicted | background s true / "
              "predicted | order agrees | visit edit distance |", "|---|---|---|---|---|---|"]
    for s in best["per_scan"]:
        lines.append(f"| {s['recording']} | {s['true_view_transitions']} / {s['predicted_view_transitions']} | "
                     f"{s['true_visits']} / {s['predicted_visits']} | {s['true_background_s']:.1f} / "
                     f"{s['predicted_background_s']:.1f} | {'yes' if s['order_agrees'] else 'no'} | "
                     f"{s['visit_edit_distance']} |")
    if plot_name:
        lines += ["", f"![predicted against true durations]({plot_name})"]
    return "\n".join(lines) + "\n"


def plot_durations(reports: list[dict], path: str | Path) -> Path:
    """Scatter of predicted against true seconds per (scan, label), one panel per model, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    from echoweave.edge.atomic import save_figure

    fig, axes = plt.subplots(1, len(reports), figsize=(5.2 * len(reports) + 2.2, 5.0), dpi=100, squeeze=False)
    cmap = plt.get_cmap("tab20")
    labels = list(dict.fromkeys(x for r in reports for x in r["labels"]))
    top = max(max(max(c["true_s"] + c["predicted_s"]) for c in r["durations"]["per_label"].values()) for r in reports)
    for ax, r in zip(axes[0], reports):
        for label, c in r["durations"]["per_label"].items():
            color = "black" if label == BACKGROUND else cmap(labels.index(label) % 20)
            ax.scatter(c["true_s"], c["predicted_s"], s=18, color=color, label=label, alpha=0.8,
                       marker="x" if label == BACKGROUND else "o")
        ax.plot([0, top * 1.05], [0, top * 1.05], color="grey", lw=1, ls="--")
        ax.set_xlim(0, top * 1.05)
        ax.set_ylim(0, top * 1.05)
        ax.set_aspect("equal")
        pooled = r["durations"]["pooled"]
        ax.set_title(f"{r['model']}\nr = {_fmt(pooled['pearson_r'])}, rho = {_fmt(pooled['spearman_rho'])}, "
                     f"{r['scans']} scans", fontsize=9)
        ax.set_xlabel("true duration per scan (s)")
        ax.set_ylabel("predicted duration per scan (s)")
        ax.grid(alpha=0.3)
    handles, names = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, names, loc="center right", fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 1 - 2.0 / fig.get_figwidth(), 1))
    return save_figure(fig, path)
