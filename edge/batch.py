"""Classify files and folders: DICOM cines, video files, folders of frames, or trees of them.

    results = classify_paths(clf, "exams/")       # one FileResult per clip found, errors included
    for r in results: print(r.summary())

A folder whose images form one numbered sequence (``img_00001.jpg``, ``img_00002.jpg``...) is
one clip (a frame folder); a folder of unrelated stills (different name patterns) is a folder of
one-frame clips, each classified on its own with the still-image sector policy (see
`Prediction.sector_method`). Other files are clips when their content (or extension) says DICOM
or video; anything else (CSV, notes) is not a clip and is ignored. A clip that cannot be read (truncated, corrupt, zero frames) gives a `FileResult` with
``error`` set; the batch goes on with the other files. Long recordings (at least
``timeline_min_s`` seconds) also get a scan timeline (`echoweave.edge.timeline`).
"""
from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from echoweave.edge.classifier import Classifier, Prediction
from echoweave.edge.errors import ClipReadError, EchoweaveError
from echoweave.edge.readers import detect_file_format, list_frame_files, read_clip
from echoweave.edge.timeline import Timeline, build_timeline

__all__ = ["FileResult", "classify_file", "classify_paths", "find_clips"]


@dataclass
class FileResult:
    """The outcome for one clip.

    Attributes:
        path: the file or frame folder.
        prediction: the clip-level prediction (None on error).
        error: what went wrong, naming the problem (None on success).
        frames, fps, duration_s: facts of the clip that was read.
        windows: per-window predictions (kept only for timelines).
        timeline: the scan timeline of a long recording, else None.
    """

    path: str
    prediction: Prediction | None = None
    error: str | None = None
    frames: int = 0
    fps: float = 0.0
    duration_s: float = 0.0
    windows: list | None = None
    timeline: Timeline | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        """JSON-ready facts (the prediction and timeline included when present)."""
        out = {"path": self.path, "ok": self.ok, "error": self.error, "frames": self.frames,
               "fps": round(self.fps, 6), "duration_s": round(self.duration_s, 6)}
        if self.prediction is not None:
            out["prediction"] = self.prediction.to_dict()
        if self.timeline is not None:
            out["timeline"] = self.timeline.to_dict()
        return out

    def summary(self) -> str:
        """One line: path, view, confidence, uncertain flag, runtime, latency (or the error); a
        guessed sector and any warning follow on the same line."""
        if not self.ok:
            return f"{self.path}: ERROR {self.error}"
        p = self.prediction
        flag = "  UNCERTAIN" if p.uncertain else ""
        guess = f", sector {p.sector_method}" if p.sector_method not in ("", "motion") else ""
        guess += ", whole-window forward (no streaming split)" if p.via == "forward" else ""
        warn = "".join(f"  WARNING: {w}" for w in p.warnings)
        evidence = "" if p.uncertainty is None else f" uncertainty {p.uncertainty:.3f}"
        return (f"{self.path}: {p.view} (class {p.class_id}) confidence {p.confidence:.3f}{evidence}{flag}  "
                f"[{p.runtime}, {p.latency_ms:.1f} ms, {self.frames} frames, {p.windows} windows{guess}]{warn}")


def is_frame_sequence(images: list[Path]) -> bool:
    """True when image files are the numbered frames of one clip: every name is the same pattern
    with a different number (``img_00001.jpg``, ``frame_2.png``...), one extension. Stills
    named for what they show (``a4c.png``, ``psax_mid.jpg``) are not."""
    if len(images) < 2:
        return False
    patterns = {(re.sub(r"\d+", "#", p.stem.lower()), p.suffix.lower()) for p in images}
    return len(patterns) == 1 and "#" in next(iter(patterns))[0]


def find_clips(path: str | Path) -> list[Path]:
    """Clips under ``path`` in sorted order: the path itself if it is a file or a frame folder,
    else every DICOM/video file, frame folder and still image below it (recursive, hidden entries
    skipped). A folder of images that are not one numbered sequence gives one clip per image.

    Raises:
        ClipReadError: the path does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise ClipReadError(path, "no such file or folder")
    if path.is_file():
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        root = Path(root)
        images = list_frame_files(root)
        sequence = is_frame_sequence(images)
        if sequence:
            found.append(root)
        for name in sorted(files):
            kinds = ("dicom", "video") if sequence else ("dicom", "video", "image")
            if not name.startswith(".") and detect_file_format(root / name) in kinds:
                found.append(root / name)
    return found


def classify_file(classifier: Classifier, path: str | Path, *, hop: int = 1, timeline_min_s: float = 10.0,
                  smooth: int = 5, min_segment_s: float = 1.0, fps: float | None = None,
                  uncertain_as: str | None = None, view_change_s: float = 0.0,
                  view_change_threshold: float = 0.15, sector_chunk_s: float = 1.0) -> FileResult:
    """Read and classify one clip; never raises for a bad clip (the error goes into the result).

    Args:
        classifier: the opened model.
        path: a DICOM/video file, an image, or a frame folder.
        hop: frames between window starts.
        timeline_min_s: recordings at least this long also get a timeline (inf = never, 0 = always).
        smooth, min_segment_s, uncertain_as, view_change_s, view_change_threshold: timeline
            smoothing, the label of uncertain windows (None keeps their argmax view) and the
            view-change rule that also marks windows uncertain (see `build_timeline`).
        fps: frame rate for frame folders (which carry none).
        sector_chunk_s: a recording long enough for a timeline finds its fan on runs of this many
            seconds (0 = once over the whole recording; see `Classifier.preprocess_with_sector`).
    """
    path = Path(path)
    try:
        clip = read_clip(path, fps=fps)
        t0 = time.perf_counter()
        long = clip.duration_s >= timeline_min_s
        windows = classifier.predict_windows(clip, hop=hop, sector_chunk_s=sector_chunk_s if long else 0.0)
        pred = classifier.combine_windows(windows, (time.perf_counter() - t0) * 1000.0)
    except EchoweaveError as exc:  # ClipReadError and friends: the message names file and problem
        msg = exc.problem if isinstance(exc, ClipReadError) and exc.path == str(path) else str(exc)
        return FileResult(str(path), error=msg)
    except (ValueError, OSError, MemoryError) as exc:  # a reader gap must not stop a batch of 1000 files
        return FileResult(str(path), error=f"{type(exc).__name__}: {exc}")
    result = FileResult(str(path), pred, frames=clip.num_frames, fps=clip.fps, duration_s=clip.duration_s)
    if long:
        result.windows = windows
        result.timeline = build_timeline(windows, classifier.class_names, smooth=smooth, min_segment_s=min_segment_s,
                                         uncertain_as=uncertain_as, view_change_s=view_change_s,
                                         view_change_threshold=view_change_threshold)
    return result


def classify_paths(classifier: Classifier, path: str | Path, *, progress: bool | None = None,
                   **kwargs) -> list[FileResult]:
    """Classify every clip `find_clips` finds under ``path`` (keyword arguments go to `classify_file`).

    Args:
        progress: show a tqdm bar on stderr; None = only when there are several clips.
    """
    clips = find_clips(path)
    if progress is None:
        progress = len(clips) > 1
    iterator = clips
    if progress:
        from tqdm import tqdm

        iterator = tqdm(clips, desc="classify", unit="clip", file=sys.stderr)
    return [classify_file(classifier, p, **kwargs) for p in iterator]
