"""Training layouts and the catalog: writers round-trip, inconsistencies are counted, formats detected."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from echoweave.edge.clip import Clip
from echoweave.edge.errors import ClipReadError, EchoweaveError
from echoweave.edge.readers.dicom import pseudonymize_patient_id
from echoweave.edge.views import NED12, NED16
from echoweave.train.data.catalog import scan_dataset
from echoweave.train.data.layout_writers import (
    write_dicom,
    write_dicom_folder,
    write_ev9v,
    write_ned,
    write_video_folder,
)


def _clip(patient: str, view: str, t: int = 4, seed: int = 0) -> Clip:
    """Smooth frames with a per-clip brightness so round trips can be checked pixel-wise."""
    yy, xx = np.mgrid[0:24, 0:32]
    frames = np.stack([(30 + seed * 7 + xx * 3 + yy * 2 + 4 * i) for i in range(t)]).astype(np.uint8)
    return Clip(frames, fps=30.0, patient_id=patient, label=NED16.index(view), view=view)


@pytest.fixture
def clips():
    return [
        _clip("pat-a", "APICAL_4C_LVRV", t=4, seed=1),
        _clip("pat-a", "PLAX_LV", t=5, seed=2),
        _clip("pat-b", "APICAL_4C_LVRV", t=6, seed=3),
        _clip("pat-b", "PULMONARY_ARTERY_BRANCH", t=3, seed=4),  # a NED-16-only view
    ]


def _by_frames(cat):
    return {r.num_frames: r for r in cat.refs}


def test_ned_round_trip_and_class_sets(tmp_path, clips):
    root = write_ned(clips, tmp_path / "ned")
    assert (root / "pat-a" / "annotations.txt").read_text().splitlines() == [
        "APICAL_4C_LVRV/clip_001 1 4 1",
        "PLAX_LV/clip_001 1 5 4",
    ]
    cat = scan_dataset(root, "ned12")
    assert cat.format == "ned" and cat.class_names == NED12 and len(cat) == 3
    assert cat.skipped == {"view outside class set ned12": 1}
    refs = _by_frames(cat)
    assert (refs[4].patient_id, refs[4].label, refs[4].view) == ("pat-a", 1, "APICAL_4C_LVRV")
    assert (refs[5].label, refs[6].patient_id) == (4, "pat-b")
    loaded = refs[6].load()
    assert loaded.label == 1 and loaded.patient_id == "pat-b" and loaded.num_frames == 6
    assert np.abs(loaded.frames.astype(int) - clips[2].frames).max() <= 3  # JPEG q95
    cat16 = scan_dataset(root, "ned16")
    assert len(cat16) == 4 and cat16.skipped == {}
    assert _by_frames(cat16)[3].label == 12 and cat16.class_names == NED16


def test_ned_inconsistencies_are_skipped_and_counted(tmp_path, clips):
    root = write_ned(clips, tmp_path / "ned")
    ann = root / "pat-b" / "annotations.txt"
    ann.write_text(
        "APICAL_4C_LVRV/clip_001 1 6 3\n"  # class id disagrees with the view (should be 1)
        "PSAX_AV/clip_009 1 5 7\n"  # folder missing
        "MYSTERY_VIEW/clip_001 1 5 2\n"  # unknown view
        "this line is broken\n"
    )
    (root / "pat-a" / "PLAX_LV" / "clip_001" / "img_00005.jpg").unlink()  # 4 files, annotation says 5
    cat = scan_dataset(root, "ned16")
    assert [(r.patient_id, r.view) for r in cat.refs] == [("pat-a", "APICAL_4C_LVRV")]
    assert cat.skipped == {
        "class id disagrees with view": 1,
        "clip folder missing": 1,
        "unknown view": 1,
        "malformed annotation line": 1,
        "frame count mismatch": 1,
        "clip folder not in annotations.txt": 1,  # pat-b/PULMONARY_ARTERY_BRANCH is no longer annotated
    }
    assert any("annotations.txt:1" in w and "APICAL_4C_LVRV is class 1, line says 3" in w for w in cat.warnings)
    with pytest.raises(ClipReadError, match="frame count mismatch"):
        scan_dataset(root, "ned16", strict=True)


def test_ev9v_round_trip_splits_and_patients(tmp_path, clips):
    splits = {"pat-a": "train", "pat-b": "test"}
    root = write_ev9v(clips, tmp_path / "ev9v", splits)
    assert (root / "train.txt").read_text().split() == ["pat-a_001", "pat-a_002"]
    cat = scan_dataset(root, "ned12")
    assert cat.format == "ev9v" and len(cat) == 3 and cat.skipped == {"view outside class set ned12": 1}
    assert {r.split for r in cat.refs if r.patient_id == "pat-a"} == {"train"}
    assert {(r.patient_id, r.split, r.label) for r in cat.refs if r.num_frames == 6} == {("pat-b", "test", 1)}
    clip = _by_frames(cat)[5].load()
    assert clip.view == "PLAX_LV" and clip.meta["split"] == "train"
    assert np.abs(clip.frames.astype(int) - clips[1].frames).max() <= 3
    # Without patients.csv the patient is the name prefix; integer labels use classes.txt.
    (root / "patients.csv").unlink()
    (root / "labels.csv").write_text("names,labels\npat-a_001,0\npat-a_002,2\npat-b_001,1\n")
    (root / "classes.txt").write_text("A4C\nA2C\nPLAX\n")
    cat = scan_dataset(root)
    assert cat.class_names == ("A4C", "A2C", "PLAX")
    assert {(r.patient_id, r.view, r.num_frames) for r in cat.refs} == {("pat-a", "A4C", 4), ("pat-a", "PLAX", 5), ("pat-b", "A2C", 6)}
    assert cat.skipped == {"video not in labels.csv": 1, "split lists a video without a label": 1}


def test_dicom_folder_with_labels_and_a_corrupt_file(tmp_path, clips):
    root = write_dicom_folder(clips[:3], tmp_path / "dcm", photometric="YBR_FULL_422")
    (root / "broken.dcm").write_bytes(b"DICM" * 10)
    cat = scan_dataset(root)
    assert cat.format == "dicom" and len(cat) == 3 and cat.skipped == {"unreadable file": 1}
    ids = {r.num_frames: r.patient_id for r in cat.refs}
    assert ids[4] == ids[5] == pseudonymize_patient_id("pat-a") != ids[6]  # same patient, same pseudonym
    assert {r.num_frames: r.view for r in cat.refs} == {4: "APICAL_4C_LVRV", 5: "PLAX_LV", 6: "APICAL_4C_LVRV"}
    clip = _by_frames(cat)[6].load()
    assert clip.label == 1 and clip.fps == pytest.approx(30.0, rel=1e-6)
    assert np.abs(clip.frames.astype(int) - clips[2].frames).mean() < 2.0


def test_video_folder_unlabelled_and_single_file(tmp_path, clips):
    root = write_video_folder(clips[:2], tmp_path / "vid", ext=".avi")
    (root / "labels.csv").unlink()
    (root / "notes.txt").write_text("not a clip")
    cat = scan_dataset(root)
    assert cat.format == "video" and len(cat) == 2
    assert all(r.label is None and r.view is None and r.fps == pytest.approx(30.0) for r in cat.refs)
    assert sorted(r.num_frames for r in cat.refs) == [4, 5] and cat.patients() == ["pat-a"]
    one = scan_dataset(write_dicom(clips[0], tmp_path / "single.dcm"))
    assert len(one) == 1 and one.refs[0].num_frames == 4 and one.refs[0].load().frames.shape == (4, 24, 32)


def test_empty_and_unrecognisable_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClipReadError, match="empty: folder is empty"):
        scan_dataset(tmp_path / "empty")
    (tmp_path / "misc").mkdir()
    (tmp_path / "misc" / "readme.md").write_text("hi")
    with pytest.raises(ClipReadError, match="no clips found"):
        scan_dataset(tmp_path / "misc")
    with pytest.raises(ClipReadError, match="path not found"):
        scan_dataset(tmp_path / "nope")


def test_writers_are_atomic(tmp_path, clips):
    bad = clips[:1] + [Clip(np.zeros((2, 4, 4), np.uint8), fps=30.0, patient_id="p")]  # no view, no label
    with pytest.raises(EchoweaveError, match="no view name"):
        write_ned(bad, tmp_path / "ned")
    assert list(tmp_path.iterdir()) == []  # neither the root nor a temp folder is left behind
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(EchoweaveError, match="refusing to overwrite"):
        write_ev9v(clips, tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "keep me"


def test_cli_data_inspect(tmp_path, clips, capsys):
    from echoweave.cli import main

    root = write_ned(clips, tmp_path / "ned")
    main(["data", "inspect", str(root)])
    out = capsys.readouterr().out
    assert "format ned, 2 patients, 3 clips, 15 frames" in out
    line = next(l for l in out.splitlines() if l.startswith("APICAL_4C_LVRV"))
    assert line.split() == ["APICAL_4C_LVRV", "2", "2", "10"]
    assert "skipped 1: view outside class set ned12" in out
    main(["data", "inspect", str(root), "--json", "--class_set", "ned16"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] == 4 and summary["views"]["PULMONARY_ARTERY_BRANCH"] == {"clips": 1, "frames": 3, "patients": 1}
    assert summary["views"]["PLAX_LV"]["frames"] == 5 and summary["skipped"] == {}
