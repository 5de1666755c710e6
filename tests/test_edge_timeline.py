"""Scan timeline: exact segments and workflow statistics on synthetic prediction sequences."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from echoweave.edge.classifier import Prediction
from echoweave.edge.timeline import build_timeline, merge_short_runs, mode_filter

NAMES = ["A", "B", "C", "D", "E", "F"]


def _preds(labels, conf=None, step=0.5, uncertain=None):
    conf = [0.9] * len(labels) if conf is None else conf
    uncertain = [False] * len(labels) if uncertain is None else uncertain
    out = []
    for i, (lab, c, u) in enumerate(zip(labels, conf, uncertain)):
        p = np.full(6, (1 - c) / 5)
        p[lab] = c
        out.append(Prediction(NAMES[lab], lab, p, c, u, i, i * step, 1.0))
    return out


def _segs(tl):
    return [(s.view, s.start_s, s.end_s, s.windows) for s in tl.segments]


def test_flickers_are_smoothed_away_and_stats_are_exact():
    labels = [0] * 20 + [1] * 20 + [2] * 20
    conf = [0.9] * 60
    labels[25], conf[25] = 5, 0.4  # one-window flicker
    labels[50] = labels[51] = 3  # two-window blip
    conf[50] = conf[51] = 0.5
    tl = build_timeline(_preds(labels, conf), NAMES, smooth=5, min_segment_s=1.0)
    assert _segs(tl) == [("A", 0.0, 10.0, 20), ("B", 10.0, 20.0, 20), ("C", 20.0, 30.0, 20)]
    assert tl.segments[1].mean_confidence == pytest.approx((19 * 0.9 + 0.4) / 20)
    assert tl.segments[2].mean_confidence == pytest.approx((18 * 0.9 + 2 * 0.5) / 20)
    st = tl.stats
    assert st["total_s"] == 30.0 and st["segments"] == 3 and st["transitions"] == 2 and st["views_seen"] == 3
    assert st["sequence"] == ["A", "B", "C"]
    assert {v: d["time_s"] for v, d in st["per_view"].items()} == {"A": 10.0, "B": 10.0, "C": 10.0}
    assert all(d["share"] == pytest.approx(1 / 3) for d in st["per_view"].values())


def test_minimum_duration_merges_shortest_first():
    # A 0-4 s, B 4-5 s, A 5-9 s, C 9-9.5 s, D 9.5-12.5 s (0.5 s per window)
    labels = [0] * 8 + [1] * 2 + [0] * 8 + [2] + [3] * 6
    tl = build_timeline(_preds(labels), NAMES, smooth=1, min_segment_s=2.0)
    # C (0.5 s) joins the longer neighbour A; then B (1 s) sits between two A's and becomes A.
    assert _segs(tl) == [("A", 0.0, 9.5, 19), ("D", 9.5, 12.5, 6)]
    assert tl.stats["transitions"] == 1
    assert tl.stats["per_view"]["A"]["share"] == pytest.approx(9.5 / 12.5)
    # Without smoothing every run is its own segment.
    raw = build_timeline(_preds(labels), NAMES, smooth=1, min_segment_s=0)
    assert [s.view for s in raw.segments] == ["A", "B", "A", "C", "D"]
    assert raw.stats["per_view"]["A"]["segments"] == 2 and raw.stats["per_view"]["A"]["time_s"] == 8.0


def test_uncertain_windows_can_form_their_own_segment():
    labels = [0] * 6 + [1] * 6 + [2] * 6
    uncertain = [False] * 6 + [True] * 6 + [False] * 6
    tl = build_timeline(_preds(labels, uncertain=uncertain), NAMES, smooth=1, min_segment_s=0,
                        uncertain_as="uncertain")
    assert [(s.view, s.class_id) for s in tl.segments] == [("A", 0), ("uncertain", -1), ("C", 2)]
    assert tl.segments[1].start_s == 3.0 and tl.segments[1].end_s == 6.0


def test_arrays_instead_of_predictions_and_irregular_steps():
    tl = build_timeline([], NAMES, times=[0.0, 1.0, 2.0, 4.0], class_ids=[1, 1, 2, 2], confidences=[1, 1, 1, 1],
                        smooth=1, min_segment_s=0)
    # The last window covers one median step (1 s): the recording ends at 5 s.
    assert _segs(tl) == [("B", 0.0, 2.0, 2), ("C", 2.0, 5.0, 2)]
    with pytest.raises(ValueError, match="strictly increasing"):
        build_timeline([], NAMES, times=[0, 0], class_ids=[1, 1], confidences=[1, 1])
    assert build_timeline([], NAMES, times=[], class_ids=[], confidences=[]).segments == []


def test_mode_filter_ties_and_merge_helper():
    labels = np.array([0, 1, 2, 1, 0])
    # Window of 3 around index 2: {1, 2, 1} -> 1. Around index 1: {0, 1, 2} tie, keeps its own 1.
    assert mode_filter(labels, np.ones(5), 3).tolist() == [0, 1, 1, 1, 0]
    # A tie without the own label goes to the higher summed confidence.
    assert mode_filter(np.array([3, 3, 5, 4, 4]), np.array([0.5, 0.5, 1, 0.9, 0.9]), 5)[2] == 4
    with pytest.raises(ValueError, match="odd"):
        mode_filter(labels, np.ones(5), 4)
    bounds = np.arange(6, dtype=float)
    assert merge_short_runs(np.array([0, 0, 1, 2, 2]), bounds, 2.0).tolist() == [0, 0, 0, 2, 2]


def test_exports_json_csv_png(tmp_path):
    labels = [0] * 10 + [4] * 10
    tl = build_timeline(_preds(labels), NAMES, smooth=3, min_segment_s=1.0)
    doc = json.loads(tl.write_json(tmp_path / "t.json").read_text())
    assert doc["stats"]["transitions"] == 1 and doc["params"]["smooth"] == 3
    assert [s["view"] for s in doc["segments"]] == ["A", "E"] and doc["segments"][1]["duration_s"] == 5.0
    rows = list(csv.DictReader(io.StringIO(tl.write_csv(tmp_path / "t.csv").read_text())))
    assert rows == [
        {"view": "A", "class_id": "0", "start_s": "0.0", "end_s": "5.0", "duration_s": "5.0", "windows": "10",
         "mean_confidence": "0.9"},
        {"view": "E", "class_id": "4", "start_s": "5.0", "end_s": "10.0", "duration_s": "5.0", "windows": "10",
         "mean_confidence": "0.9"},
    ]
    png = tl.plot(tmp_path / "t.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width == 1000 and 100 < height < 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json", "t.png"]  # no temp files left


def test_evidential_uncertainty_reaches_segments_csv_json_and_plot(tmp_path):
    labels = [0] * 10 + [1] * 10
    preds = _preds(labels)
    for i, p in enumerate(preds):
        p.uncertainty = 0.1 if i < 10 else 0.6
    tl = build_timeline(preds, NAMES, smooth=1, min_segment_s=0)
    assert [s.mean_uncertainty for s in tl.segments] == pytest.approx([0.1, 0.6])
    assert tl.uncertainty["time_s"][:2] == [0.0, 0.5] and tl.uncertainty["uncertainty"][-1] == 0.6
    rows = list(csv.DictReader(io.StringIO(tl.to_csv())))
    assert [float(r["mean_uncertainty"]) for r in rows] == pytest.approx([0.1, 0.6])
    doc = json.loads(tl.write_json(tmp_path / "t.json").read_text())
    assert doc["segments"][1]["mean_uncertainty"] == pytest.approx(0.6) and len(doc["uncertainty"]["uncertainty"]) == 20
    png = tl.plot(tmp_path / "t.png")
    assert png.stat().st_size > 1000
    # A softmax model: no uncertainty anywhere (the Kotlin port's golden timelines stay as they are).
    plain = build_timeline(_preds(labels), NAMES, smooth=1, min_segment_s=0)
    assert plain.uncertainty is None and "mean_uncertainty" not in plain.to_dict()["segments"][0]
    assert "mean_uncertainty" not in plain.to_csv().splitlines()[0]
    # One window without an uncertainty (mixed sources) means none is reported.
    preds[3].uncertainty = None
    assert build_timeline(preds, NAMES, smooth=1, min_segment_s=0).uncertainty is None
