"""`echoweave classify` and edge.batch: the real pydicom cine end to end, batches of good and bad
files (error lines, exit status 1), JSON/CSV/timeline outputs; and the edge-only install check."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import echoweave.edge as ew
from echoweave.cli import main
from echoweave.edge.batch import classify_file, find_clips
from echoweave.edge.readers import read_clip
from tests.helpers.edge_artifacts import exported_artifacts

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tiny_checkpoint):
    return exported_artifacts(tiny_checkpoint)


def _write_video(path, t, fps=10, h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=Fraction(fps))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for _ in range(t):
            f = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _strip_latency(doc):
    for r in doc["results"]:
        if "prediction" in r:
            r["prediction"].pop("latency_ms")
    return doc


def test_real_cine_end_to_end_is_well_formed_and_deterministic(model_dir, ybr_cine_path, capsys):
    runs = []
    for _ in range(2):
        main(["classify", ybr_cine_path, "--model", str(model_dir), "--runtime", "onnxruntime", "--json"])
        runs.append(json.loads(capsys.readouterr().out))
    assert _strip_latency(runs[0]) == _strip_latency(runs[1])
    doc = runs[0]
    assert doc["model"]["runtime"] == "onnxruntime" and doc["model"]["artifact"] == "onnx_cpu_fp32"
    (r,) = doc["results"]
    p = r["prediction"]
    assert r["ok"] and r["frames"] == 30 and r["fps"] == pytest.approx(30.0, abs=0.01)
    assert p["windows"] == 27 and p["frame_index"] == 29 and len(p["probabilities"]) == 12
    assert sum(p["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert p["view"] == ew.load(model_dir, runtime="onnxruntime").class_names[p["class_id"]]
    assert p["confidence"] == pytest.approx(max(p["probabilities"]), abs=1e-6)
    assert p["uncertain"] == (p["confidence"] < 0.5)
    # Same answer from the Python API (the CLI adds nothing of its own) and from LiteRT.
    clip = read_clip(ybr_cine_path)
    for runtime in ("onnxruntime", "litert"):
        api = ew.load(model_dir, runtime=runtime).predict(clip)
        assert api.class_id == p["class_id"]
        np.testing.assert_allclose(api.probabilities, p["probabilities"], atol=1e-5)


@pytest.fixture
def exam_tree(tmp_path, ybr_cine_path):
    root = tmp_path / "exams"
    (root / "p1" / "frames").mkdir(parents=True)
    (root / "p2").mkdir()
    shutil.copy(ybr_cine_path, root / "p1" / "cine.dcm")
    data = Path(ybr_cine_path).read_bytes()
    (root / "p1" / "cut.dcm").write_bytes(data[: len(data) // 2])  # truncated
    (root / "p2" / "empty.mp4").write_bytes(b"")  # zero bytes
    (root / "p2" / "notes.txt").write_text("not a clip")  # ignored
    rng = np.random.default_rng(1)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 52), dtype=np.uint8)).save(root / "p1" / "frames" / f"img_{i + 1}.png")
    _write_video(root / "p2" / "long.mp4", t=130, fps=10)  # 13 s: long enough for a timeline
    return root


def test_find_clips_walks_the_tree(exam_tree):
    names = [str(p.relative_to(exam_tree)) for p in find_clips(exam_tree)]
    assert names == ["p1/cine.dcm", "p1/cut.dcm", "p1/frames", "p2/empty.mp4", "p2/long.mp4"]


def test_batch_reports_bad_files_continues_and_exits_1(model_dir, exam_tree, tmp_path, capsys):
    out_csv = tmp_path / "out" / "results.csv"
    with pytest.raises(SystemExit) as info:
        main(["classify", str(exam_tree), "--model", str(model_dir), "--runtime", "litert", "--csv", str(out_csv)])
    assert info.value.code == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "model tfw_tiny: litert_xnnpack_fp32 on litert"
    by_name = {Path(line.split(":")[0]).name: line for line in lines[1:] if not line.startswith("    ")}
    assert set(by_name) == {"cine.dcm", "cut.dcm", "frames", "empty.mp4", "long.mp4"}
    assert "ERROR truncated" in by_name["cut.dcm"] and "ERROR" in by_name["empty.mp4"]
    for ok in ("cine.dcm", "frames", "long.mp4"):
        assert "confidence" in by_name[ok] and "[litert," in by_name[ok]
    assert "6 frames, 3 windows" in by_name["frames"]
    timeline_lines = [line for line in lines if line.startswith("    timeline:")]
    assert len(timeline_lines) == 1 and "over 12.7 s" in timeline_lines[0]  # only the long video: windows end at 0.3 .. 12.9 s
    assert "2 of 5 clips failed" in captured.err
    rows = list(csv.DictReader(out_csv.open()))
    assert [Path(r["path"]).name for r in rows] == ["cine.dcm", "cut.dcm", "frames", "empty.mp4", "long.mp4"]
    assert [r["ok"] for r in rows] == ["True", "False", "True", "False", "True"]
    assert rows[1]["error"].startswith("truncated") and rows[0]["runtime"] == "litert"


def test_timeline_option_writes_png_and_json(model_dir, exam_tree, tmp_path, capsys):
    video = exam_tree / "p2" / "long.mp4"
    png = tmp_path / "tl" / "scan.png"
    main(["classify", str(video), "--model", str(model_dir), "--runtime", "onnxruntime", "--timeline", str(png),
          "--hop", "2"])
    out = capsys.readouterr().out
    assert f"timeline plot: {png}" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(png.with_suffix(".json").read_text())
    assert doc["stats"]["total_s"] == pytest.approx(12.9 + 0.2 - 0.3)  # last window end + one hop - first
    assert sum(s["windows"] for s in doc["segments"]) == len(range(0, 130 - 3, 2))


def test_classify_file_never_raises_for_bad_clips(model_dir, tmp_path):
    clf = ew.load(model_dir, runtime="onnxruntime")
    garbage = tmp_path / "x.avi"
    garbage.write_bytes(os.urandom(300))
    r = classify_file(clf, garbage)
    assert not r.ok and r.prediction is None and r.error and "ERROR" in r.summary()
    missing = classify_file(clf, tmp_path / "nope.dcm")
    assert missing.error == "file not found"


def test_missing_model_and_empty_folder_are_one_line_errors(model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["classify", str(tmp_path), "--model", str(tmp_path / "nomodel")])
    assert info.value.code == 2 and "no manifest here" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["classify", str(tmp_path), "--model", str(model_dir)])
    assert info.value.code == 1 and "no DICOM, video or frame folder found" in capsys.readouterr().err


def test_edge_only_install_runs_classify_without_torch(model_dir, ybr_cine_path, tmp_path):
    """Fresh venv with `pip install -e '.[edge]'` (cached while the edge extra is unchanged):
    `echoweave --help` and `echoweave classify` work and `import torch` fails."""
    out = tmp_path / "edge.json"
    proc = subprocess.run(["bash", str(REPO / "tests" / "edge_only_install.sh"), str(model_dir), ybr_cine_path,
                           str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    (r,) = doc["results"]
    assert doc["model"]["runtime"] == "onnxruntime" and r["ok"] and r["prediction"]["windows"] == 27
    # The torch-free install gives the same answer as this (full) environment.
    here = ew.load(model_dir, runtime="onnxruntime").predict(read_clip(ybr_cine_path))
    np.testing.assert_allclose(r["prediction"]["probabilities"], here.probabilities, atol=1e-5)
    seconds = int(proc.stderr.split("install_seconds=")[1].split()[0])
    print(f"edge-only install: {seconds} s (0 = cached venv reused)", file=sys.stderr)
