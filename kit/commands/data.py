"""`echoweave data ...`: look at datasets on disk and write synthetic ones.

    echoweave data inspect PATH [--json]
    echoweave data synth --out FOLDER [--layout ned|ev9v|dicom|video] [--patients 10]
    echoweave data synth --out FOLDER --layout video --scan_s 120 --patients 12 --seed 1   # full-length scans
"""
from __future__ import annotations

import json as _json
from typing import Literal


def inspect(path: str, json: bool = False, class_set: Literal["ned12", "ned16", "ev9v"] = "ned12") -> None:
    """Detect a dataset's format and print patients, views, clips and frames per view.

    Reads headers and file lists only (no pixel decoding). Patient ids from DICOM are shown only
    as counts; the pseudonyms themselves are never printed.

    Args:
        path: a NED root, an EV9V root, a folder of DICOM or video files, a frame folder, or one file.
        json: print the summary as JSON instead of a table.
        class_set: label space for NED view names (ned12 or ned16); ev9v for EV9V's nine views.
    """
    from echoweave.train.data.catalog import scan_dataset

    summary = scan_dataset(path, class_set=class_set).summary()
    if json:
        print(_json.dumps(summary, indent=2))
        return
    print(f"{summary['root']}: format {summary['format']}, {summary['patients']} patients, "
          f"{summary['clips']} clips, {summary['frames']} frames")
    rows = [(view, v["patients"], v["clips"], v["frames"]) for view, v in summary["views"].items()]
    width = max([len("view")] + [len(r[0]) for r in rows])
    print(f"{'view':<{width}}  {'patients':>8}  {'clips':>6}  {'frames':>7}")
    for view, patients, clips, frames in rows:
        print(f"{view:<{width}}  {patients:>8}  {clips:>6}  {frames:>7}")
    if summary["splits"]:
        print("splits: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["splits"].items())))
    for reason, n in sorted(summary["skipped"].items()):
        print(f"skipped {n}: {reason}")
    for line in summary["skipped_files"]:
        print(f"  skipped {line}")
    listed = len(summary["skipped_files"])
    if listed < sum(summary["skipped"].values()):
        print(f"  ... the first {listed} skipped files are listed")


SYNTH_LAYOUTS = ("ned", "ev9v", "dicom", "video")


def synth(*, out: str, layout: Literal["ned", "ev9v", "dicom", "video"] = "ned", patients: int = 10,
          clips_per_view: int = 2, num_frames: int = 32, height: int = 112, width: int = 112, difficulty: float = 0.3,
          burned_in_text: bool = True, ecg_strip: bool = True, fps: float = 30.0, seed: int = 0,
          scan_s: float = 0.0, degraded: float = 0.0) -> None:
    """Generate the synthetic echo phantom (12 NED views) and write it in a real on-disk layout.

    Prints a JSON summary (counts, seconds) and also writes it to ``OUT/phantom_summary.json``.
    With --scan_s, writes full-length examinations instead of clips: one per patient, several
    views in a row with background (probe moving, no standard view) between them, each
    recording with a ``<name>.truth.json`` of its true segments beside it (for `echoweave
    workflow compare`). Patients of another --seed than the training data's are unseen.

    Args:
        out: destination folder (must not exist or be empty); required.
        layout: ned (``<case>/<VIEW>/<clip>/img_00001.jpg`` + annotations.txt), ev9v (``Images/``,
            labels.csv, patient-wise train/validation/test.txt), dicom (multi-frame MONOCHROME2 files
            + labels.csv) or video (mp4 files + labels.csv).
        patients: synthetic patients (each has its own probe angle, depth, gain, heart rate).
        clips_per_view: clips of each view per patient.
        num_frames: frames per clip.
        height: frame height in pixels.
        width: frame width in pixels.
        difficulty: 0 (clean) .. 1 (noisy, low contrast, more probe jitter).
        burned_in_text: burn a fake name, date and depth scale outside the fan.
        ecg_strip: draw a static ECG trace below the fan.
        fps: frame rate written with the clips.
        seed: generator seed (same seed, same bytes).
        scan_s: seconds per full-length examination (0 = write clips); layout dicom or video only;
            --clips_per_view and --num_frames do not apply.
        degraded: share of clips rendered at poor quality (dropped frames, heavy noise, an acoustic
            shadow), for uncertainty experiments; 0 = all clean (the summary counts them).
    """
    import time
    from pathlib import Path

    from echoweave.edge.atomic import write_text_atomic
    from echoweave.edge.errors import EchoweaveError
    from echoweave.train.data import layout_writers as lw
    from echoweave.train.data.phantom import PhantomConfig, iter_dataset

    if layout not in SYNTH_LAYOUTS:
        raise EchoweaveError(f"{out}: unknown layout {layout!r}; choose one of {', '.join(SYNTH_LAYOUTS)}")
    cfg = PhantomConfig(num_patients=patients, clips_per_view=clips_per_view, num_frames=num_frames, fps=fps,
                        height=height, width=width, difficulty=difficulty, burned_in_text=burned_in_text,
                        ecg_strip=ecg_strip, seed=seed, degraded=degraded)
    if scan_s:
        from echoweave.train.data.scans import write_phantom_scans

        if layout not in ("dicom", "video") or scan_s < 0:
            raise EchoweaveError(f"{out}: --scan_s {scan_s} writes recordings: give --layout dicom or video and "
                                 "a positive number of seconds")
        summary = {"layout": layout, "patients": patients,
                   **write_phantom_scans(out, cfg, patients, scan_s, ".dcm" if layout == "dicom" else ".mp4")}
        write_text_atomic(Path(out) / "phantom_summary.json", _json.dumps(summary, indent=2) + "\n")
        print(_json.dumps({k: v for k, v in summary.items() if k != "recordings"}, indent=2))
        return
    t0 = time.time()
    counts = {"clips": 0, "frames": 0, "degraded": 0}

    def counted():
        for clip in iter_dataset(cfg):
            counts["clips"] += 1
            counts["frames"] += clip.num_frames
            counts["degraded"] += int(clip.meta["quality"]["degraded"])
            yield clip

    if layout == "ned":
        lw.write_ned(counted(), out)
    elif layout == "ev9v":
        # Patient-wise split: the last ~20 % of patients are test, the ~10 % before them validation.
        n_test = max(1, round(0.2 * patients)) if patients >= 3 else 0
        n_val = max(1, round(0.1 * patients)) if patients >= 3 else 0
        ids = [f"P{i:03d}" for i in range(patients)]
        splits = {p: "train" for p in ids[: patients - n_test - n_val]}
        splits.update({p: "validation" for p in ids[patients - n_test - n_val: patients - n_test]})
        splits.update({p: "test" for p in ids[patients - n_test:]})
        lw.write_ev9v(counted(), out, splits)
    elif layout == "dicom":
        lw.write_dicom_folder(counted(), out)
    else:
        lw.write_video_folder(counted(), out)
    summary = {
        "out": str(out), "layout": layout, "patients": patients, "views": len(cfg.class_set),
        "clips_per_view": clips_per_view, "clips": counts["clips"], "frames": counts["frames"],
        "degraded_clips": counts["degraded"],
        "frame_size": [height, width], "fps": fps, "difficulty": difficulty, "seed": seed,
        "seconds": round(time.time() - t0, 2),
    }
    write_text_atomic(Path(out) / "phantom_summary.json", _json.dumps(summary, indent=2) + "\n")
    print(_json.dumps(summary, indent=2))
