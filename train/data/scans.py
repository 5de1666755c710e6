"""Full-length scans on disk: a recording (video or DICOM) with its true segments beside it.

    write_phantom_scans("data/scans", PhantomConfig(seed=1), scans=12, scan_s=120, ext=".mp4")
    truth = read_truth("data/scans/scan_P000.truth.json")     # ScanTruth: segments tile [0, duration)

The ground-truth file of ``scan_P000.mp4`` is ``scan_P000.truth.json`` in the same folder:

    {"kind": "echoweave-scan-truth", "version": 1, "recording": "scan_P000.mp4", "fps": 30.0,
     "frames": 3600, "duration_s": 120.0, "patient_id": "P000", "seed": 1,
     "segments": [{"view": "PSAX_MV", "start_s": 0.0, "end_s": 9.6},
                  {"view": "background", "start_s": 9.6, "end_s": 12.1}, ...]}

Segments are in time order and tile ``[0, duration_s)`` with no gap or overlap; ``view`` is a
class name or ``"background"`` (probe moving between views, no standard view). `echoweave
workflow compare` reads these files; `echoweave data synth --scan_s S` writes them for phantom
examinations of unseen patients (another ``--seed`` than the training data's).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from echoweave.edge.atomic import write_json_atomic
from echoweave.edge.errors import EchoweaveError
from echoweave.edge.timeline import BACKGROUND, Segment

__all__ = ["TRUTH_KIND", "TRUTH_SUFFIX", "ScanTruth", "ScanInputError", "read_truth", "truth_path",
           "write_phantom_scans", "write_truth"]

TRUTH_KIND = "echoweave-scan-truth"
TRUTH_SUFFIX = ".truth.json"
# Boundaries are frame times written as floats; this is far below one frame at any frame rate.
TIME_TOLERANCE_S = 1e-6


class ScanInputError(EchoweaveError, ValueError):
    """A scan's ground truth or prediction file is missing, malformed or does not match its recording."""


@dataclass
class ScanTruth:
    """The true segments of one recording.

    Attributes:
        path: the truth file.
        recording: file name of the recording it describes.
        fps: frame rate of the recording.
        duration_s: length of the recording (segments tile ``[0, duration_s)``).
        segments: `Segment` objects; background ones have class id -1, views their index in
            ``classes`` when given to `read_truth` (else 0), no windows.
        meta: the file's other keys (patient_id, seed, frames...).
    """

    path: Path
    recording: str
    fps: float
    duration_s: float
    segments: list[Segment]
    meta: dict


def truth_path(recording: str | Path) -> Path:
    """The ground-truth file that belongs to ``recording``: same folder, ``<stem>.truth.json``."""
    recording = Path(recording)
    return recording.with_name(recording.stem + TRUTH_SUFFIX)


def write_truth(recording: str | Path, segments: list[dict], fps: float, frames: int, **meta) -> Path:
    """Write ``truth_path(recording)`` (atomically) for true ``segments`` ``[{"view", "start_s", "end_s"}]``.

    Returns:
        The truth file's path.
    """
    recording = Path(recording)
    doc = {"kind": TRUTH_KIND, "version": 1, "recording": recording.name, "fps": float(fps), "frames": int(frames),
           "duration_s": frames / float(fps), **meta,
           "segments": [{"view": s["view"], "start_s": float(s["start_s"]), "end_s": float(s["end_s"])}
                        for s in segments]}
    _check_tiling(doc["segments"], doc["duration_s"], recording.name)
    return write_json_atomic(truth_path(recording), doc, sort_keys=False)


def _check_tiling(segments: list[dict], duration_s: float, where: str) -> None:
    if not segments:
        raise ScanInputError(f"{where}: no segments")
    t = 0.0
    for i, s in enumerate(segments):
        if abs(s["start_s"] - t) > TIME_TOLERANCE_S or s["end_s"] <= s["start_s"]:
            raise ScanInputError(f"{where}: segment {i} ({s['view']}, {s['start_s']}-{s['end_s']} s) does not "
                                 f"start where the previous one ends ({t} s) or is empty")
        t = s["end_s"]
    if abs(t - duration_s) > TIME_TOLERANCE_S:
        raise ScanInputError(f"{where}: segments end at {t} s but the recording lasts {duration_s} s")


def read_json_file(path: Path, what: str, hint: str = ""):
    """The JSON document in ``path``, or `ScanInputError` naming the file ("<what> not found",
    "not a readable JSON file (...)" followed by ``hint``)."""
    if not path.is_file():
        raise ScanInputError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScanInputError(f"{path}: not a readable JSON file ({exc}){hint}") from None


def read_truth(path: str | Path, classes: list[str] | None = None) -> ScanTruth:
    """Read and check a ground-truth file.

    Args:
        path: a ``*.truth.json`` file.
        classes: class names; a view outside them is an error (None = any name).

    Raises:
        ScanInputError: missing or unreadable file, not a truth file, segments that do not tile
            the recording, an unknown view; the message names the file.
    """
    path = Path(path)
    doc = read_json_file(path, "ground-truth file")
    if not isinstance(doc, dict) or doc.get("kind") != TRUTH_KIND:
        raise ScanInputError(f"{path}: not an echoweave scan ground-truth file (kind {TRUTH_KIND!r})")
    try:
        segs = [{"view": str(s["view"]), "start_s": float(s["start_s"]), "end_s": float(s["end_s"])}
                for s in doc["segments"]]
        fps, duration = float(doc["fps"]), float(doc["duration_s"])
        recording = str(doc["recording"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ScanInputError(f"{path}: malformed ground truth ({type(exc).__name__}: {exc})") from None
    _check_tiling(segs, duration, str(path))
    index = {name: i for i, name in enumerate(classes or [])}
    unknown = sorted({s["view"] for s in segs if s["view"] != BACKGROUND and classes is not None
                      and s["view"] not in index})
    if unknown:
        raise ScanInputError(f"{path}: views {unknown} are not classes of the model ({', '.join(classes)})")
    segments = [Segment(s["view"], -1 if s["view"] == BACKGROUND else index.get(s["view"], 0), s["start_s"],
                        s["end_s"], 0, 1.0) for s in segs]
    meta = {k: v for k, v in doc.items() if k not in ("segments", "fps", "duration_s", "recording")}
    return ScanTruth(path, recording, fps, duration, segments, meta)


def write_phantom_scans(out: str | Path, cfg, scans: int, scan_s: float, ext: str = ".mp4") -> dict:
    """Write ``scans`` phantom examinations (one per patient ``P000``...) with their ground truth.

    Each is `generate_scan` of `plan_scan` (views with background transitions between them),
    written as ``OUT/scan_<patient><ext>`` (``.mp4``/``.avi`` video or ``.dcm`` MONOCHROME2 cine)
    and ``OUT/scan_<patient>.truth.json``. Every file is written atomically, the truth after its
    recording, so a truth file always has its whole recording.

    Args:
        out: destination folder (absent or empty).
        cfg: `PhantomConfig` (seed, frame size, fps, difficulty; ``num_frames`` is ignored).
        scans: how many examinations.
        scan_s: seconds per examination.
        ext: ``.mp4``, ``.avi`` or ``.dcm``.

    Returns:
        A summary: counts, seconds, and per scan its file, views and true seconds per label.
    """
    from echoweave.train.data.layout_writers import write_dicom, write_video
    from echoweave.train.data.phantom import generate_scan, make_patient, plan_scan

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EchoweaveError(f"{out}: already exists and is not an empty folder; refusing to overwrite")
    if ext not in (".mp4", ".avi", ".dcm"):
        raise EchoweaveError(f"{out}: scans are written as .mp4, .avi or .dcm files, not {ext!r}")
    t0 = time.time()
    rows, frames = [], 0
    for i in range(scans):
        patient = make_patient(i, cfg.seed)
        clip, truth = generate_scan(plan_scan(i, cfg, scan_s), patient, cfg, index=i)
        path = out / f"scan_{patient.patient_id}{ext}"
        (write_dicom if ext == ".dcm" else write_video)(clip, path)
        write_truth(path, truth, cfg.fps, clip.num_frames, patient_id=patient.patient_id, seed=cfg.seed,
                    difficulty=cfg.difficulty, source=clip.source)
        seconds: dict[str, float] = {}
        for s in truth:
            seconds[s["view"]] = seconds.get(s["view"], 0.0) + s["end_s"] - s["start_s"]
        rows.append({"recording": path.name, "truth": truth_path(path).name, "frames": clip.num_frames,
                     "visits": sum(s["view"] != BACKGROUND for s in truth), "seconds": seconds})
        frames += clip.num_frames
    return {"out": str(out), "scans": scans, "scan_s": scan_s, "frames": frames, "fps": cfg.fps,
            "frame_size": [cfg.height, cfg.width], "seed": cfg.seed, "difficulty": cfg.difficulty,
            "seconds": round(time.time() - t0, 2), "recordings": rows}
