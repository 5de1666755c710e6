"""Full-length scan workflow analysis: phantom examinations with background and ground truth,
workflow statistics of a timeline, and `echoweave workflow compare` (exact numbers on perfect
and perturbed predictions, one-line errors naming the file)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from echoweave.cli import main
from echoweave.edge.timeline import BACKGROUND, Segment, scan_workflow
from echoweave.train.data.phantom import PhantomConfig, ScanPlan, generate_clip, generate_scan, make_patient, plan_scan
from echoweave.train.data.scans import ScanInputError, read_truth, truth_path, write_truth
from echoweave.train.evaluation.workflow import (
    compare_workflows,
    match_segments,
    pair_with_truth,
    read_predictions,
)

CFG = PhantomConfig(height=40, width=40, fps=10.0, seed=4)


# ---------------------------------------------------------------- phantom examinations
def test_scan_truth_tiles_the_recording_with_background_between_views():
    plan = ScanPlan(("PSAX_MV", "APICAL_5C", "PSAX_MV"), (2.0, 1.5, 1.04), (0.8, 1.0))
    patient = make_patient(2, CFG.seed)
    clip, truth = generate_scan(plan, patient, CFG, index=0)
    assert [t["view"] for t in truth] == ["PSAX_MV", BACKGROUND, "APICAL_5C", BACKGROUND, "PSAX_MV"]
    frames = [20, 8, 15, 10, 10]  # round(seconds * fps) per segment
    assert clip.num_frames == sum(frames) and clip.label is None and clip.fps == 10.0
    edges = np.cumsum([0] + frames) / 10.0
    assert [t["start_s"] for t in truth] == pytest.approx(edges[:-1]) and [t["end_s"] for t in truth] == pytest.approx(edges[1:])
    assert clip.meta["segments"] == truth
    # A visit's steady part is exactly the phantom clip of that view (clip index = visit number).
    first = generate_clip("PSAX_MV", patient, 0, dataclasses.replace(CFG, num_frames=20)).frames
    assert np.array_equal(clip.frames[:20], first)
    # Mid-transition frames show neither view: far from both neighbours' frames.
    mid = clip.frames[24].astype(float)
    assert np.abs(mid - clip.frames[19]).mean() > 8 and np.abs(mid - clip.frames[28]).mean() > 8
    again, _ = generate_scan(plan, patient, CFG, index=0)
    assert np.array_equal(again.frames, clip.frames)  # deterministic


def test_plan_scan_is_deterministic_and_plausible():
    plans = [plan_scan(i, CFG, scan_s=90.0) for i in range(6)]
    assert plan_scan(3, CFG, scan_s=90.0) == plans[3]
    assert plan_scan(3, dataclasses.replace(CFG, seed=5), scan_s=90.0) != plans[3]
    for p in plans:
        assert all(a != b for a, b in zip(p.views, p.views[1:]))  # never the same view twice in a row
        assert set(p.views) <= set(CFG.class_set) and 4 <= len(set(p.views)) <= 10
        assert sum(p.view_s) + sum(p.transition_s) == pytest.approx(90.0)
        assert min(p.view_s) >= 1.0 and all(1.0 <= t <= 4.0 for t in p.transition_s)
    with pytest.raises(Exception, match="same view|twice in a row"):
        ScanPlan(("PSAX_MV", "PSAX_MV"), (1.0, 1.0), (1.0,))


def test_synth_writes_scans_with_truth_beside_them(tmp_path, capsys):
    from echoweave.edge.readers import read_clip

    out = tmp_path / "scans"
    main(["data", "synth", "--out", str(out), "--layout", "dicom", "--scan_s", "20", "--patients", "2",
          "--height", "40", "--width", "40", "--fps", "10", "--seed", "3"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["scans"] == 2 and summary["seed"] == 3
    names = sorted(p.name for p in out.iterdir())
    assert names == ["phantom_summary.json", "scan_P000.dcm", "scan_P000.truth.json", "scan_P001.dcm",
                     "scan_P001.truth.json"]
    for rec in ("scan_P000.dcm", "scan_P001.dcm"):
        truth = read_truth(truth_path(out / rec))
        clip = read_clip(out / rec)
        assert truth.recording == rec and clip.num_frames == truth.meta["frames"]
        assert truth.duration_s == pytest.approx(clip.duration_s) and truth.segments[-1].end_s == truth.duration_s
        assert truth.meta["patient_id"] == rec[5:9] and truth.meta["seed"] == 3
        assert {s.view for s in truth.segments} - set(CFG.class_set) == {BACKGROUND}
    with pytest.raises(SystemExit) as info:  # recordings need a file layout
        main(["data", "synth", "--out", str(tmp_path / "x"), "--layout", "ned", "--scan_s", "20"])
    assert info.value.code == 2 and "--scan_s" in capsys.readouterr().err


# ---------------------------------------------------------------- workflow statistics
def _seg(view, a, b, cid=0):
    return Segment(view, -1 if view == BACKGROUND else cid, a, b, 0, 1.0)


def test_scan_workflow_counts_visits_order_and_view_transitions_without_background():
    segs = [_seg("A", 0, 5), _seg(BACKGROUND, 5, 7), _seg("B", 7, 9), _seg(BACKGROUND, 9, 10), _seg("B", 10, 12),
            _seg("A", 12, 13), _seg(BACKGROUND, 13, 14), _seg("C", 14, 20)]
    w = scan_workflow(segs)
    assert w["order"] == ["A", "B", "C"] and w["visit_sequence"] == ["A", "B", "A", "C"]
    assert w["view_transitions"] == [["A", "B", 1], ["B", "A", 1], ["A", "C", 1]]
    assert w["background_s"] == 4.0 and w["total_s"] == 20.0 and w["transitions"] == 7
    assert w["per_view"]["B"]["visits"] == 1 and w["per_view"]["B"]["segments"] == 2  # B, background, B: one visit
    assert w["per_view"]["A"]["visits"] == 2 and w["per_view"]["A"]["mean_visit_s"] == 3.0
    assert w["per_view"][BACKGROUND]["visits"] == 3 and w["per_view"]["C"]["first_s"] == 14


# ---------------------------------------------------------------- compare
TRUTHS = {  # three scans: (view, seconds) in order
    "s1.mp4": [("A", 10.0), (BACKGROUND, 2.0), ("B", 6.0), (BACKGROUND, 2.0), ("C", 10.0)],
    "s2.mp4": [("B", 4.0), (BACKGROUND, 3.0), ("A", 14.0), (BACKGROUND, 1.0), ("C", 8.0)],
    "s3.mp4": [("C", 12.0), (BACKGROUND, 2.0), ("A", 6.0), (BACKGROUND, 2.0), ("B", 10.0)],
}


def _segments(plan):
    out, t = [], 0.0
    for view, s in plan:
        out.append({"view": view, "start_s": t, "end_s": t + s})
        t += s
    return out


def _write_scans(root: Path, predicted: dict | None = None, name: str = "pred.json") -> Path:
    """Truth files for TRUTHS and a classify --json document predicting ``predicted`` (default: the truth)."""
    root.mkdir(parents=True, exist_ok=True)
    results = []
    for rec, plan in TRUTHS.items():
        truth = _segments(plan)
        duration = truth[-1]["end_s"]
        write_truth(root / rec, truth, fps=10.0, frames=int(duration * 10))
        pred = _segments((predicted or {}).get(rec, plan))
        # classify's timeline starts at the first window's last frame (0.2 s here), like the real one
        segs = [{"view": s["view"], "class_id": -1 if s["view"] == BACKGROUND else "ABC".index(s["view"]),
                 "start_s": max(s["start_s"], 0.2), "end_s": s["end_s"], "windows": 10, "mean_confidence": 0.9,
                 "duration_s": s["end_s"] - s["start_s"]} for s in pred]
        results.append({"path": str(root / rec), "ok": True, "error": None, "frames": int(duration * 10), "fps": 10.0,
                        "duration_s": duration, "timeline": {"segments": segs}})
    doc = {"model": {"model_id": "m", "artifact": "onnx_cpu_fp32"}, "results": results}
    (root / name).write_text(json.dumps(doc))
    return root / name


def test_perfect_prediction_gives_rho_1_and_precision_recall_1(tmp_path):
    report = compare_workflows(pair_with_truth(read_predictions(_write_scans(tmp_path))))
    d = report["durations"]
    assert report["scans"] == 3 and report["labels"] == ["A", "B", "C", BACKGROUND]
    assert d["pooled"]["pearson_r"] == pytest.approx(1.0) and d["pooled"]["spearman_rho"] == pytest.approx(1.0)
    assert d["pooled"]["n"] == 12 and d["pooled"]["pearson_p"] < 1e-6
    assert d["per_label"]["A"]["pearson_r"] == pytest.approx(1.0) and d["per_label"]["A"]["true_s"] == [10, 14, 6]
    assert d["per_label"][BACKGROUND]["pearson_r"] is None  # 4, 4, 4 s in every scan: constant, undefined
    assert d["mean_abs_error_s"] == 0.0
    for part in ("all", "views"):
        assert report["segments"][part]["precision"] == 1.0 and report["segments"][part]["recall"] == 1.0
    assert report["segments"]["views"]["true"] == 9 and report["segments"]["all"]["true"] == 15
    assert report["workflow"]["order_agreement"] == 1.0 and report["workflow"]["mean_visit_edit_distance"] == 0
    st = report["statistics"]["A"]
    assert st["true_s"]["mean"] == pytest.approx(10.0) and st["true_s"]["sd"] == pytest.approx(4.0)
    # 95% t-interval of the mean share: mean ± t(0.975, 2) * sd / sqrt(3)
    shares = np.array([10 / 30, 14 / 30, 6 / 32])
    half = 4.302652729911275 * shares.std(ddof=1) / np.sqrt(3)
    assert st["true_share"]["ci95"] == pytest.approx([shares.mean() - half, shares.mean() + half])
    assert report["target"]["met"] is False  # 3 scans < 10


def test_known_perturbation_gives_known_numbers(tmp_path):
    # Scan s1: the model never notices the first transition (A runs on 2 s into it) and calls
    # the last view B instead of C. Everything else is perfect.
    wrong = {"s1.mp4": [("A", 12.0), ("B", 6.0), (BACKGROUND, 2.0), ("B", 10.0)]}
    report = compare_workflows(pair_with_truth(read_predictions(_write_scans(tmp_path, wrong))),
                               tolerance_s=1.0, min_iou=0.5)
    labels, d = report["labels"], report["durations"]
    assert d["per_label"]["A"]["predicted_s"] == [12, 14, 6] and d["per_label"]["C"]["predicted_s"] == [0, 8, 12]
    assert d["per_label"]["B"]["predicted_s"] == [16, 4, 10] and d["per_label"][BACKGROUND]["predicted_s"] == [2, 4, 4]
    true = np.array([[10, 6, 10, 4], [14, 4, 8, 4], [6, 10, 12, 4]], float)
    pred = np.array([[12, 16, 0, 2], [14, 4, 8, 4], [6, 10, 12, 4]], float)
    assert labels == ["A", "B", "C", BACKGROUND]
    assert d["mean_abs_error_s"] == pytest.approx(np.abs(true - pred).mean()) == pytest.approx(24 / 12)
    assert d["pooled"]["pearson_r"] == pytest.approx(np.corrcoef(true.ravel(), pred.ravel())[0, 1])
    assert d["per_label"]["C"]["pearson_r"] == pytest.approx(np.corrcoef([10, 8, 12], [0, 8, 12])[0, 1])
    # s1's segments: A 0-12 matches A 0-10 (IoU 10/12); B 12-18 vs B 12-18 exact; the second
    # background 18-20 exact; B 20-30 has no true B there. True background 10-12 and C 20-30 unmatched.
    segs = report["segments"]
    assert (segs["all"]["matched"], segs["all"]["predicted"], segs["all"]["true"]) == (3 + 10, 4 + 10, 5 + 10)
    assert segs["all"]["precision"] == pytest.approx(13 / 14) and segs["all"]["recall"] == pytest.approx(13 / 15)
    assert (segs["views"]["matched"], segs["views"]["predicted"], segs["views"]["true"]) == (2 + 6, 3 + 6, 3 + 6)
    s1 = report["per_scan"][0]
    assert s1["predicted_order"] == ["A", "B"] and s1["order_agrees"] is False and s1["visit_edit_distance"] == 1
    assert report["workflow"]["order_agreement"] == pytest.approx(2 / 3)


def test_segment_matching_rule():
    t = [_seg("A", 0, 10), _seg("B", 10, 20)]
    # within tolerance on both ends (IoU 0.9) / IoU >= min_iou / same label required
    assert match_segments([_seg("A", 0.5, 10.5)], t, 1.0, 0.99) == [(0, 0)]
    assert match_segments([_seg("A", 0, 6)], t, 1.0, 0.5) == [(0, 0)]  # IoU 0.6
    assert match_segments([_seg("A", 0, 4)], t, 1.0, 0.5) == []  # IoU 0.4, end 6 s off
    assert match_segments([_seg("B", 0, 10)], t, 1.0, 0.5) == []
    # one-to-one: two predictions for one true segment, the larger IoU wins
    assert match_segments([_seg("A", 0, 7), _seg("A", 7, 10)], t, 1.0, 0.3) == [(0, 0)]


# ---------------------------------------------------------------- bad input
def _error(capsys, args) -> str:
    with pytest.raises(SystemExit) as info:
        main(["workflow", "compare", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("echoweave: error:")
    return err


def test_bad_input_is_one_line_naming_the_file(tmp_path, capsys):
    pred = _write_scans(tmp_path / "ok")
    report = str(tmp_path / "r" / "report.md")
    # missing ground truth
    (tmp_path / "ok" / "s2.truth.json").unlink()
    err = _error(capsys, [str(pred), "--report", report])
    assert "s2.truth.json" in err and "not found" in err and "s2.mp4" in err
    # a truth file of another recording
    (tmp_path / "ok" / "s2.truth.json").write_text((tmp_path / "ok" / "s3.truth.json").read_text())
    err = _error(capsys, [str(pred), "--report", report])
    assert "s2.truth.json" in err and "describes s3.mp4, not s2.mp4" in err
    # same name, different length: not the same recording
    doc = json.loads((tmp_path / "ok" / "s3.truth.json").read_text())
    doc.update(recording="s2.mp4")
    (tmp_path / "ok" / "s2.truth.json").write_text(json.dumps(doc))
    err = _error(capsys, [str(pred), "--report", report])
    assert "s2.truth.json" in err and "not the same recording" in err
    # truth that does not tile the recording
    doc = json.loads((tmp_path / "ok" / "s1.truth.json").read_text())
    doc["segments"][1]["start_s"] = 11.0
    (tmp_path / "ok" / "s2.truth.json").write_text(json.dumps({**doc, "recording": "s2.mp4"}))
    err = _error(capsys, [str(pred), "--report", report])
    assert "s2.truth.json" in err and "segment 1" in err
    # empty prediction: no recordings / a recording without timeline
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"model": {"model_id": "m"}, "results": []}))
    err = _error(capsys, [str(empty), "--report", report])
    assert str(empty) in err and "empty prediction" in err
    doc = json.loads(pred.read_text())
    doc["results"][1].pop("timeline")
    (tmp_path / "notl.json").write_text(json.dumps(doc))
    err = _error(capsys, [str(tmp_path / "notl.json"), "--report", report])
    assert "notl.json" in err and "s2.mp4" in err and "empty prediction" in err
    # not a classify document, missing file, wrong report suffix
    (tmp_path / "junk.json").write_text("[1, 2]")
    assert "junk.json" in _error(capsys, [str(tmp_path / "junk.json"), "--report", report])
    assert "nope.json: prediction file not found" in _error(capsys, [str(tmp_path / "nope.json"), "--report", report])
    assert "--report" in _error(capsys, [str(pred), "--report", str(tmp_path / "r.txt")])
    assert not (tmp_path / "r").exists()  # nothing written on error
    with pytest.raises(ScanInputError, match="junk.json: not an echoweave scan ground-truth file"):
        read_truth(tmp_path / "junk.json")


def test_compare_command_writes_markdown_json_and_plot(tmp_path, capsys):
    good = _write_scans(tmp_path / "scans")
    wrong = _write_scans(tmp_path / "scans", {"s1.mp4": [("A", 12.0), ("B", 6.0), (BACKGROUND, 2.0), ("B", 10.0)]},
                         name="wrong.json")
    doc = json.loads(wrong.read_text())
    doc["model"]["model_id"] = "other"
    wrong.write_text(json.dumps(doc))
    md = tmp_path / "out" / "workflow.md"
    main(["workflow", "compare", f"{wrong},{good}", "--report", str(md), "--tolerance_s", "0.5"])
    out = capsys.readouterr().out
    assert "m onnx_cpu_fp32: 3 scans, pooled duration r 1.000" in out and "target not met" in out
    assert sorted(p.name for p in md.parent.iterdir()) == ["workflow.json", "workflow.md", "workflow.png"]
    report = json.loads(md.with_suffix(".json").read_text())
    assert report["best_model"] == "m onnx_cpu_fp32" and len(report["models"]) == 2
    assert report["models"][0]["params"] == {"tolerance_s": 0.5, "min_iou": 0.5}
    text = md.read_text()
    assert "| m onnx_cpu_fp32 (best) | 1.000" in text and "| other onnx_cpu_fp32 |" in text
    assert "![predicted against true durations](workflow.png)" in text
    assert md.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    # Rows named by the user (two trainings of one architecture share model id and artifact).
    main(["workflow", "compare", f"{good},{good}", "--report", str(md), "--names", "demo 12 patients, 40 patients"])
    assert [m["model"] for m in json.loads(md.with_suffix(".json").read_text())["models"]] == \
        ["demo 12 patients", "40 patients"]
    assert "| demo 12 patients (best) |" in md.read_text()
    for bad in ("one", "a,a", "a,"):
        with pytest.raises(SystemExit):
            main(["workflow", "compare", f"{good},{good}", "--report", str(md), "--names", bad])
        assert "--names needs 2 distinct non-empty names" in capsys.readouterr().err


# ---------------------------------------------------------------- background in predicted timelines
def _preds(labels, step=0.1):
    from echoweave.edge.classifier import Prediction

    out = []
    for i, lab in enumerate(labels):
        p = np.full(3, 0.025)
        p[lab] = 0.95
        out.append(Prediction("ABC"[lab], lab, p, 0.95, False, i, i * step, 1.0))
    return out


def test_view_change_marks_the_probe_moving_between_views_as_background():
    from echoweave.edge.timeline import build_timeline, view_change

    preds = _preds([0] * 50 + [1] * 50)  # A for 0-5 s, B for 5-10 s, always confident
    change = view_change(np.array([p.time_s for p in preds]), np.stack([p.probabilities for p in preds]), 0.5)
    # all-A before, all-B after: JS of (0.95, 0.025, 0.025) and (0.025, 0.95, 0.025), midpoint (0.4875, 0.4875, 0.025)
    assert change[50] == pytest.approx(0.95 * np.log(0.95 / 0.4875) + 0.025 * np.log(0.025 / 0.4875))
    assert change[20] == pytest.approx(0.0) and change[80] == pytest.approx(0.0) and change.argmax() == 50
    plain = build_timeline(preds, ["A", "B", "C"], uncertain_as=BACKGROUND)
    assert [s.view for s in plain.segments] == ["A", "B"] and "view_change_s" not in plain.params
    tl = build_timeline(preds, ["A", "B", "C"], uncertain_as=BACKGROUND, view_change_s=1.0, view_change_threshold=0.15)
    assert [s.view for s in tl.segments] == ["A", BACKGROUND, "B"] and tl.segments[1].class_id == -1
    assert 4.0 < tl.segments[1].start_s < 5.0 < tl.segments[1].end_s < 6.0  # about the change, both sides
    assert tl.segments[1].start_s + tl.segments[1].end_s == pytest.approx(10.0, abs=0.11)  # symmetric within a window
    assert tl.params["view_change_s"] == 1.0 and tl.workflow["background_s"] == pytest.approx(tl.segments[1].duration_s)
    with pytest.raises(ValueError, match="uncertain_as"):
        build_timeline(preds, ["A", "B", "C"], view_change_s=0.5)


def test_classify_json_gives_workflow_with_background(tmp_path, tiny_checkpoint, capsys):
    import echoweave.edge as ew
    from echoweave.edge.readers import read_clip
    from echoweave.edge.timeline import build_timeline
    from echoweave.train.data.layout_writers import write_video
    from tests.helpers.edge_artifacts import exported_artifacts

    model = exported_artifacts(tiny_checkpoint)
    capsys.readouterr()  # the export's own output, when it was not cached
    clip, _ = generate_scan(ScanPlan(("PSAX_MV", "APICAL_5C"), (2.0, 2.0), (1.0,)), make_patient(0, 4), CFG)
    video = write_video(clip, tmp_path / "scan.mp4")
    docs = {}
    for flag in ("--background", "--no-background"):
        main(["classify", str(video), "--model", str(model), "--runtime", "onnxruntime", "--json", "--timeline_min_s", "0",
              flag])
        docs[flag] = json.loads(capsys.readouterr().out)["results"][0]
    clf = ew.load(model, runtime="onnxruntime")
    expected = build_timeline(clf.predict_windows(read_clip(video)), clf.class_names, uncertain_as=BACKGROUND,
                              view_change_s=1.0, view_change_threshold=0.15)
    got = docs["--background"]
    assert [(s["view"], s["windows"]) for s in got["timeline"]["segments"]] == \
        [(s.view, s.windows) for s in expected.segments]
    assert got["workflow"]["background_s"] == pytest.approx(expected.workflow["background_s"])
    assert set(got["workflow"]) >= {"order", "visit_sequence", "view_transitions", "background_s", "per_view"}
    assert all(s["class_id"] >= 0 for s in docs["--no-background"]["timeline"]["segments"])
    assert docs["--no-background"]["workflow"]["background_s"] == 0.0
