"""Scan timeline: smooth per-window predictions of a long recording into view segments, and the
workflow statistics of the scan (time and share per view, number of transitions).

This is the automatic "clinical workflow description" of full-length scans (Sharma et al.,
fetal anomaly US: partition the video, label each part, then report the type, duration and
sequence of views; their Fig. 1 is such a timeline).

    tl = build_timeline(clf.predict_windows(clip, hop=4), min_segment_s=1.0)
    tl.stats["per_view"]["APICAL_4C_LVRV"]["share"]
    tl.write_json("scan.json"); tl.write_csv("scan.csv"); tl.plot("scan.png")

Smoothing, in this order (both steps are deterministic and documented in the output's params):

1. **Mode filter** over ``smooth`` consecutive windows (odd; 1 disables it): each window takes
   the most frequent class in its neighbourhood (truncated at the ends). Ties keep the window's
   own class if it is among the tied, else the tied class with the highest summed confidence.
   This removes isolated one- or two-window flickers, like a median filter for labels.
2. **Minimum segment duration**: a run shorter than ``min_segment_s`` is merged into a
   neighbour, shortest run first: into both neighbours' class when they agree (an A-B-A blip
   becomes A), else into the longer neighbour. This acts as hysteresis: the timeline switches
   view only when the new view lasts ``min_segment_s``.

Time model: a prediction at time t_i covers [t_i, t_{i+1}); the last one covers one median step.
A segment runs from its first window's time to the next segment's first window's time, so the
segments tile [t_0, t_last + step) exactly and per-view times sum to the total.

Optionally (``uncertain_as=BACKGROUND``), windows whose prediction is flagged uncertain
become their own pseudo-view (class id -1) instead of the argmax view, the analogue of the
paper's "background search or transition" class. The view classifier has no such class, and a
softmax is often confident on frames that show no standard view, so with ``view_change_s`` a
second signal marks windows too: where the model's belief is *changing* (`view_change`: the
Jensen-Shannon divergence between its mean probabilities over the ``view_change_s`` seconds
before and after the window, above ``view_change_threshold``), i.e. the probe is moving from one
view to the next. `echoweave classify` does both by default (1 s, 0.15 nats: chosen on phantom
development scans, `docs/workflow_phantom.md`); `scan_workflow` counts that time as its own
class but leaves it out of the view order and the view-to-view transitions. A direct cut
between two views (no probe movement) then also shows as about a second of background.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from echoweave.edge.atomic import save_figure, write_text_atomic

__all__ = ["BACKGROUND", "Segment", "Timeline", "build_timeline", "is_background", "mode_filter", "merge_short_runs",
           "scan_workflow", "view_change", "workflow_stats"]

#: Label of time showing no standard view (probe moving between views, searching); class id -1.
BACKGROUND = "background"


@dataclass
class Segment:
    """One stretch of the recording showing one view.

    Attributes:
        view: class name (or the ``uncertain_as`` label).
        class_id: class index (-1 for the uncertain pseudo-view).
        start_s: start time in seconds.
        end_s: end time in seconds (exclusive).
        windows: number of window predictions inside.
        mean_confidence: mean model confidence of those windows.
        mean_uncertainty: mean evidential uncertainty of those windows (`Prediction.uncertainty`,
            a model trained with the evidential loss), None for a model without one.
    """

    view: str
    class_id: int
    start_s: float
    end_s: float
    windows: int
    mean_confidence: float
    mean_uncertainty: float | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        """The fields plus ``duration_s``; ``mean_uncertainty`` only when the model has one."""
        d = {**asdict(self), "duration_s": self.duration_s}
        if d["mean_uncertainty"] is None:
            del d["mean_uncertainty"]
        return d


@dataclass
class Timeline:
    """Segments of a recording plus its workflow statistics (see `workflow_stats`).

    Attributes:
        segments: the smoothed segments, in time order.
        params: the smoothing settings used.
        uncertainty: per-window evidential uncertainty ``{"time_s": [...], "uncertainty": [...]}``
            of a model that has one (drawn under the timeline by `plot`), else None.
    """

    segments: list[Segment]
    params: dict = field(default_factory=dict)
    uncertainty: dict | None = None

    @property
    def stats(self) -> dict:
        return workflow_stats(self.segments)

    @property
    def workflow(self) -> dict:
        """`scan_workflow` of the segments: the statistics plus order, visits and view transitions."""
        return scan_workflow(self.segments)

    def to_dict(self) -> dict:
        d = {"segments": [s.to_dict() for s in self.segments], "stats": self.stats, "params": self.params}
        if self.uncertainty is not None:
            d["uncertainty"] = self.uncertainty
        return d

    def write_json(self, path: str | Path) -> Path:
        """Write segments, statistics, parameters and the `workflow` as JSON (atomically)."""
        return write_text_atomic(path, json.dumps({**self.to_dict(), "workflow": self.workflow}, indent=2) + "\n")

    def to_csv(self) -> str:
        """Segments as CSV text: view, class_id, start_s, end_s, duration_s, windows, mean_confidence
        (and mean_uncertainty for a model with an evidential uncertainty)."""
        buf = io.StringIO()
        cols = ["view", "class_id", "start_s", "end_s", "duration_s", "windows", "mean_confidence"]
        if self.uncertainty is not None:
            cols.append("mean_uncertainty")
        writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        for s in self.segments:
            d = s.to_dict()
            writer.writerow({k: (round(d[k], 6) if isinstance(d[k], float) else d[k]) for k in cols})
        return buf.getvalue()

    def write_csv(self, path: str | Path) -> Path:
        """Write `to_csv` to a file (atomically)."""
        return write_text_atomic(path, self.to_csv())

    def plot(self, path: str | Path, title: str = "") -> Path:
        """Timeline PNG: one row per view (bars where it was shown), like Fig. 1 of the workflow paper."""
        return plot_timeline(self, path, title)


def mode_filter(labels: np.ndarray, confidences: np.ndarray, size: int) -> np.ndarray:
    """Most frequent label in a centred window of ``size`` (odd) labels; see the module docstring for ties."""
    labels = np.asarray(labels)
    if size < 1 or size % 2 == 0:
        raise ValueError(f"smooth must be an odd positive number of windows, got {size}")
    if size == 1 or len(labels) == 0:
        return labels.copy()
    r = size // 2
    out = labels.copy()
    for i in range(len(labels)):
        lo, hi = max(0, i - r), min(len(labels), i + r + 1)
        values, counts = np.unique(labels[lo:hi], return_counts=True)
        tied = values[counts == counts.max()]
        if labels[i] in tied:
            continue
        weight = [confidences[lo:hi][labels[lo:hi] == v].sum() for v in tied]
        out[i] = tied[int(np.argmax(weight))]
    return out


def _runs(labels: np.ndarray) -> list[list[int]]:
    """``[label, first index, stop index]`` of each run of equal labels."""
    runs = []
    for i, lab in enumerate(labels):
        if runs and runs[-1][0] == lab:
            runs[-1][2] = i + 1
        else:
            runs.append([lab, i, i + 1])
    return runs


def merge_short_runs(labels: np.ndarray, bounds: np.ndarray, min_duration: float) -> np.ndarray:
    """Relabel runs shorter than ``min_duration`` (shortest first) into their neighbours.

    Args:
        labels: ``(N,)`` label per window.
        bounds: ``(N + 1,)`` window boundaries in seconds (window i covers bounds[i]..bounds[i+1]).
        min_duration: seconds.
    """
    labels = np.asarray(labels).copy()
    while True:
        runs = _runs(labels)
        if len(runs) < 2:
            return labels
        durations = [bounds[b] - bounds[a] for _, a, b in runs]
        short = [i for i, d in enumerate(durations) if d < min_duration - 1e-9]
        if not short:
            return labels
        i = min(short, key=lambda j: (durations[j], j))
        prev = runs[i - 1] if i > 0 else None
        nxt = runs[i + 1] if i + 1 < len(runs) else None
        if prev and nxt and prev[0] == nxt[0]:
            target = prev[0]
        elif prev and nxt:
            target = prev[0] if durations[i - 1] >= durations[i + 1] else nxt[0]
        else:
            target = (prev or nxt)[0]
        labels[runs[i][1] : runs[i][2]] = target


def view_change(times: np.ndarray, probabilities: np.ndarray, half_s: float) -> np.ndarray:
    """How much the model's belief changes around each window: the Jensen-Shannon divergence (nats,
    0 .. ln 2) between the mean probabilities of the windows in ``[t - half_s, t)`` and in
    ``[t, t + half_s]``. High while the probe moves from one view to the next.

    Args:
        times: ``(N,)`` increasing window times in seconds.
        probabilities: ``(N, K)`` per-window class probabilities.
        half_s: seconds on each side.

    Returns:
        ``(N,)`` float64; the first window (nothing before it) compares itself with what follows.
    """
    t = np.asarray(times, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)  # (N, K)
    csum = np.concatenate([np.zeros((1, p.shape[1])), np.cumsum(p, axis=0)])  # (N + 1, K)
    idx = np.arange(len(t))
    lo = np.searchsorted(t, t - half_s, side="left")
    hi = np.searchsorted(t, t + half_s, side="right")
    before = (csum[idx] - csum[lo]) / np.maximum(idx - lo, 1)[:, None]
    before[idx == lo] = p[idx == lo]
    after = (csum[hi] - csum[idx]) / (hi - idx)[:, None]
    mid = (before + after) / 2

    def kl(a, b):
        return np.sum(np.where(a > 0, a * np.log(np.maximum(a, 1e-300) / np.maximum(b, 1e-300)), 0.0), axis=1)

    return 0.5 * kl(before, mid) + 0.5 * kl(after, mid)


def build_timeline(predictions: Sequence, class_names: Sequence[str] | None = None, *, smooth: int = 5,
                   min_segment_s: float = 1.0, uncertain_as: str | None = None,
                   times: Sequence[float] | None = None, class_ids: Sequence[int] | None = None,
                   confidences: Sequence[float] | None = None, view_change_s: float = 0.0,
                   view_change_threshold: float = 0.15) -> Timeline:
    """Smooth per-window predictions into segments.

    Args:
        predictions: `Prediction` objects in time order (or empty when the arrays are given).
        class_names: names for class ids (default: the predictions' view names).
        smooth: mode-filter window in predictions (odd; 1 = off).
        min_segment_s: shortest segment kept, seconds (0 = off).
        uncertain_as: label for uncertain windows (None = keep their argmax view).
        times, class_ids, confidences: the same facts as arrays, instead of ``predictions``.
        view_change_s: with ``uncertain_as``, also treat as uncertain the windows where the
            model's belief is changing: `view_change` over this many seconds on each side above
            ``view_change_threshold`` (0 = off; needs ``predictions``, which carry probabilities).
        view_change_threshold: Jensen-Shannon divergence in nats (0 .. ln 2 = 0.69).

    Returns:
        A `Timeline`.
    """
    names = dict(enumerate(class_names)) if class_names is not None else {}
    if predictions:
        times = [p.time_s for p in predictions]
        class_ids = [p.class_id for p in predictions]
        confidences = [p.confidence for p in predictions]
        for p in predictions:
            names.setdefault(p.class_id, p.view)
        uncertain = np.array([p.uncertain for p in predictions])
        evidential = [p.uncertainty for p in predictions]
        evidential = None if any(u is None for u in evidential) else np.asarray(evidential, dtype=np.float64)
    else:
        evidential = None
        uncertain = np.zeros(0 if times is None else len(times), bool)
    if times is None or len(times) == 0:
        return Timeline([], {"smooth": smooth, "min_segment_s": min_segment_s, "uncertain_as": uncertain_as})
    t = np.asarray(times, dtype=np.float64)
    if np.any(np.diff(t) <= 0):
        raise ValueError("prediction times must be strictly increasing")
    labels = np.asarray(class_ids, dtype=np.int64).copy()
    conf = np.asarray(confidences, dtype=np.float64)
    params = {"smooth": smooth, "min_segment_s": min_segment_s, "uncertain_as": uncertain_as}
    if view_change_s > 0:
        if uncertain_as is None or not predictions:
            raise ValueError("view_change_s needs uncertain_as and predictions (with probabilities)")
        change = view_change(t, np.stack([p.probabilities for p in predictions]), view_change_s)
        uncertain = uncertain | (change > view_change_threshold)
        params.update(view_change_s=view_change_s, view_change_threshold=view_change_threshold)
    if uncertain_as is not None:
        labels[uncertain] = -1
        names[-1] = uncertain_as
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    bounds = np.append(t, t[-1] + step)  # (N + 1,)
    labels = mode_filter(labels, conf, smooth)
    if min_segment_s > 0:
        labels = merge_short_runs(labels, bounds, min_segment_s)
    segments = [Segment(names.get(int(lab), str(int(lab))), int(lab), float(bounds[a]), float(bounds[b]), b - a,
                        float(conf[a:b].mean()), None if evidential is None else float(evidential[a:b].mean()))
                for lab, a, b in _runs(labels)]
    trace = None if evidential is None else {"time_s": t.tolist(), "uncertainty": evidential.tolist()}
    return Timeline(segments, {**params, "step_s": step}, trace)


def is_background(segment: Segment) -> bool:
    """True for time that shows no standard view: the uncertain pseudo-view (class id -1) or a
    segment labelled `BACKGROUND` (ground truth)."""
    return segment.class_id < 0 or segment.view == BACKGROUND


def workflow_stats(segments: Sequence[Segment]) -> dict:
    """Workflow statistics of a segmented scan.

    Returns:
        ``{"total_s", "segments", "transitions", "views_seen", "sequence" (views in order, merged
        repeats removed), "per_view": {view: {"time_s", "share", "segments", "mean_confidence"}}}``;
        ``per_view`` is ordered by time spent, longest first.
    """
    total = float(sum(s.duration_s for s in segments))
    per_view: dict[str, dict] = {}
    for s in segments:
        v = per_view.setdefault(s.view, {"time_s": 0.0, "segments": 0, "_conf": 0.0, "_windows": 0})
        v["time_s"] += s.duration_s
        v["segments"] += 1
        v["_conf"] += s.mean_confidence * s.windows
        v["_windows"] += s.windows
    ordered = {}
    for view, v in sorted(per_view.items(), key=lambda kv: -kv[1]["time_s"]):
        ordered[view] = {"time_s": v["time_s"], "share": v["time_s"] / total if total else 0.0,
                         "segments": v["segments"], "mean_confidence": v["_conf"] / max(v["_windows"], 1)}
    return {"total_s": total, "segments": len(segments), "transitions": max(len(segments) - 1, 0),
            "views_seen": len(per_view), "sequence": [s.view for s in segments], "per_view": ordered}


def scan_workflow(segments: Sequence[Segment]) -> dict:
    """`workflow_stats` plus what a sonographer or a trainer asks of a whole examination: which
    views in what order, how many visits to each, and the view-to-view transitions.

    Background (`is_background`) is a class of time like a view (it has a ``per_view`` entry)
    but is left out of ``order``, ``visit_sequence`` and ``view_transitions``: going A ->
    background -> B is one view transition A -> B. (`workflow_stats` itself is unchanged: the
    Kotlin core ports it against golden files.)

    Returns:
        `workflow_stats` with, in addition, ``"order"`` (standard views by first appearance),
        ``"visit_sequence"`` (standard views visited in order, background removed and repeats
        merged), ``"view_transitions"`` (``[from, to, count]`` in order of first occurrence),
        ``"background_s"`` and, per ``per_view`` entry, ``"visits"`` (times the view enters the
        visit sequence: A, background, A is one visit of A in two segments; for background, its
        segments), ``"first_s"`` (start of its first segment) and ``"mean_visit_s"``.
    """
    stats = workflow_stats(segments)
    visits = [s.view for s in segments if not is_background(s)]
    visits = [v for i, v in enumerate(visits) if i == 0 or v != visits[i - 1]]
    for view, v in stats["per_view"].items():
        mine = [s for s in segments if s.view == view]
        n = len(mine) if is_background(mine[0]) else visits.count(view)
        v.update(visits=n, first_s=mine[0].start_s, mean_visit_s=v["time_s"] / n)
    pairs: dict[tuple[str, str], int] = {}
    for a, b in zip(visits, visits[1:]):
        pairs[a, b] = pairs.get((a, b), 0) + 1
    return {**stats, "order": list(dict.fromkeys(visits)), "visit_sequence": visits,
            "view_transitions": [[a, b, n] for (a, b), n in pairs.items()],
            "background_s": float(sum(s.duration_s for s in segments if is_background(s)))}


def plot_timeline(timeline: Timeline, path: str | Path, title: str = "") -> Path:
    """Draw the timeline (rows = views in order of first appearance, bars = segments) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and CI
    import matplotlib.pyplot as plt

    segs = timeline.segments
    views = list(dict.fromkeys(s.view for s in segs))
    total = segs[-1].end_s if segs else 0.0
    minutes = total > 300
    unit = 60.0 if minutes else 1.0
    height = 0.45 * max(len(views), 1) + 1.4
    if timeline.uncertainty is None:
        fig, ax = plt.subplots(figsize=(10, height), dpi=100)
    else:  # a strip under the views: where the model says it does not know
        fig, (ax, low) = plt.subplots(2, 1, figsize=(10, height + 1.3), dpi=100, sharex=True,
                                      gridspec_kw={"height_ratios": [max(len(views), 1), 2.2]})
        tu = np.asarray(timeline.uncertainty["time_s"]) / unit
        low.fill_between(tu, timeline.uncertainty["uncertainty"], step="post", color="tab:red", alpha=0.5)
        low.set_ylim(0, 1)
        low.set_ylabel("uncertainty", fontsize=8)
        low.grid(axis="x", alpha=0.3)
    cmap = plt.get_cmap("tab20")
    for row, view in enumerate(views):
        bars = [(s.start_s / unit, s.duration_s / unit) for s in segs if s.view == view]
        ax.broken_barh(bars, (row - 0.4, 0.8), color=cmap(row % 20))
    ax.set_yticks(range(len(views)), views)
    ax.invert_yaxis()
    ax.set_xlim(segs[0].start_s / unit if segs else 0, total / unit if total else 1)
    (ax if timeline.uncertainty is None else low).set_xlabel("time (minutes)" if minutes else "time (s)")
    stats = timeline.stats
    ax.set_title(title or f"{stats['segments']} segments, {stats['transitions']} transitions, {total:.1f} s")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
