"""A light index of a dataset's clips: where each clip is, whose it is and what it shows, without
holding pixels. Training keeps a `Catalog` in memory and calls `ClipRef.load()` per sample.

    cat = scan_dataset("data/ned", class_set="ned12")
    print(len(cat), cat.class_names, cat.skipped)
    clip = cat.refs[0].load()          # decodes the frames now

`scan_dataset` recognises, in this order: a single file (DICOM or video), an EV9V root
(``Images/`` + ``labels.csv``), a NED root (case folders with ``annotations.txt``), a folder
of frame images (one clip), and a folder (searched recursively) of DICOM and/or video files.
For DICOM/video folders an optional ``labels.csv`` (``names,labels``; names are file stems)
supplies labels; otherwise labels are ``None``. Patient ids: NED = case folder; EV9V =
``patients.csv`` if present, else the video name up to its first ``_`` (a guess: EV9V ships
no patient ids, so check that your naming follows ``<patient>_<rest>``); DICOM = the salted
hash of PatientID (`echoweave.edge.readers.dicom.pseudonymize_patient_id`), falling back to
the file-name rule; videos = the file-name rule.
"""
from __future__ import annotations

import csv
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from echoweave.edge.clip import Clip
from echoweave.edge.errors import ClipReadError
from echoweave.edge.views import CLASS_SETS, NED16

log = logging.getLogger(__name__)
MAX_WARNINGS = 100


@dataclass
class ClipRef:
    """Where one clip lives and what is known about it before decoding.

    Attributes:
        source: file (DICOM, video) or folder of frames.
        patient_id: whose clip it is (pseudonymous for DICOM); used for patient-wise splits.
        label: class id in the catalog's ``class_names`` or ``None`` if unlabelled.
        view: class name for ``label`` or ``None``.
        num_frames: frames in the clip (declared by the container/header or counted files).
        fps: frames per second (30 when the format carries none).
        split: ``"train"``/``"validation"``/``"test"`` when the dataset defines splits, else ``None``.
        format: ``"ned"``, ``"ev9v"``, ``"frames"``, ``"dicom"`` or ``"video"``.
        frame_range: 1-based inclusive ``(start, stop)`` inside a frame folder, or ``None`` = all.
    """

    source: str
    patient_id: str
    label: int | None
    view: str | None
    num_frames: int
    fps: float
    split: str | None = None
    format: str = ""
    frame_range: tuple[int, int] | None = None

    def load(self, gray: bool = True) -> Clip:
        """Decode the clip and attach the catalog's patient id, label and view.

        Raises:
            ClipReadError: the file changed since scanning or cannot be decoded.
        """
        from echoweave.edge.readers import read_dicom, read_frame_folder, read_video

        if self.format in ("ned", "ev9v", "frames"):
            start, stop = self.frame_range or (1, None)
            clip = read_frame_folder(self.source, gray=gray, fps=self.fps, start=start, stop=stop)
        elif self.format == "dicom":
            clip = read_dicom(self.source, gray=gray)
        elif self.format == "video":
            clip = read_video(self.source, gray=gray)
        else:
            raise ClipReadError(self.source, f"unknown clip format {self.format!r} in catalog")
        if self.format in ("ned", "ev9v") and clip.num_frames != self.num_frames:
            raise ClipReadError(self.source, f"catalog expected {self.num_frames} frames, found {clip.num_frames}")
        clip.patient_id, clip.label, clip.view = self.patient_id, self.label, self.view
        clip.meta["split"] = self.split
        return clip


@dataclass
class Catalog:
    """The clips of one dataset plus what was skipped while scanning it.

    Attributes:
        refs: the usable clips.
        class_names: class id -> name for ``ClipRef.label``.
        skipped: reason -> number of items skipped for it (never silently dropped).
        warnings: the first `MAX_WARNINGS` skip messages, each naming the file and the problem.
        format: ``"ned"``, ``"ev9v"``, ``"frames"``, ``"dicom"``, ``"video"`` or ``"dicom+video"``.
        root: the scanned path.
    """

    refs: list[ClipRef]
    class_names: tuple[str, ...]
    skipped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    format: str = ""
    root: str = ""

    def __len__(self) -> int:
        return len(self.refs)

    def __iter__(self):
        return iter(self.refs)

    def __getitem__(self, i: int) -> ClipRef:
        return self.refs[i]

    def patients(self) -> list[str]:
        """Distinct patient ids, sorted."""
        return sorted({r.patient_id for r in self.refs})

    def summary(self) -> dict:
        """Counts for reports: totals and, per view, clips, frames and patients; what was skipped,
        by reason (``skipped``) and by file (``skipped_files``: ``"path: reason[: detail]"``)."""
        per_view: dict[str, dict] = defaultdict(lambda: {"clips": 0, "frames": 0, "patients": set()})
        for r in self.refs:
            v = per_view[r.view or "(unlabelled)"]
            v["clips"] += 1
            v["frames"] += r.num_frames
            v["patients"].add(r.patient_id)
        order = {n: i for i, n in enumerate(self.class_names)}
        views = {
            k: {"clips": v["clips"], "frames": v["frames"], "patients": len(v["patients"])}
            for k, v in sorted(per_view.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
        }
        return {
            "root": self.root,
            "format": self.format,
            "patients": len(self.patients()),
            "clips": len(self.refs),
            "frames": sum(r.num_frames for r in self.refs),
            "classes": list(self.class_names),
            "views": views,
            "splits": dict(Counter(r.split for r in self.refs if r.split)),
            "skipped": dict(self.skipped),
            # Each skipped file by name with its problem (the first MAX_WARNINGS of them).
            "skipped_files": list(self.warnings),
        }


class SkipLog:
    """Collects skipped items by reason (with a message naming the path) for a `Catalog`."""

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.counts: Counter = Counter()
        self.messages: list[str] = []

    def skip(self, path, reason: str, detail: str = "") -> None:
        """Record one skipped item; in strict mode raise `ClipReadError` instead."""
        if self.strict:
            raise ClipReadError(path, f"{reason}{': ' + detail if detail else ''}")
        self.counts[reason] += 1
        if len(self.messages) < MAX_WARNINGS:
            self.messages.append(f"{path}: {reason}{': ' + detail if detail else ''}")

    def log_summary(self, root) -> None:
        for reason, n in sorted(self.counts.items()):
            log.warning("%s: skipped %d item(s): %s", root, n, reason)


def patient_from_name(name: str) -> str:
    """Patient id guessed from a clip name: the part before the first ``_`` (whole name if none)."""
    return name.split("_", 1)[0] or name


def read_two_column_csv(path: Path, key: str, value: str) -> dict[str, str]:
    """Read a ``key,value`` CSV (header names matched case-insensitively) into a dict.

    Raises:
        ClipReadError: missing columns or duplicate keys.
    """
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = {c.strip().lower(): c for c in (reader.fieldnames or [])}
        if key not in cols or value not in cols:
            raise ClipReadError(path, f"expected columns {key!r} and {value!r}, found {reader.fieldnames}")
        out: dict[str, str] = {}
        for row in reader:
            k, v = (row[cols[key]] or "").strip(), (row[cols[value]] or "").strip()
            if not k:
                continue
            if k in out and out[k] != v:
                raise ClipReadError(path, f"{k!r} listed twice with different values ({out[k]!r}, {v!r})")
            out[k] = v
    return out


def resolve_labels(raw: dict[str, str], class_set: str, classes_file: Path | None = None):
    """Map label strings from a CSV to class ids.

    Rules: integers are class ids (names from ``classes_file`` if given, else ``class_<i>``);
    NED view names map into ``class_set`` (views outside it are reported, not relabelled);
    any other names become classes of their own, in sorted order.

    Returns:
        ``(class_names, {name: (label, view) | None})`` where ``None`` = view outside the class set.
    """
    values = set(raw.values())
    if values and all(v.lstrip("-").isdigit() for v in values):
        ids = sorted({int(v) for v in values})
        if ids[0] < 0:
            raise ClipReadError(classes_file or "labels.csv", f"negative class id {ids[0]}")
        if classes_file is not None and classes_file.is_file():
            names = tuple(l.strip() for l in classes_file.read_text().splitlines() if l.strip())
            if ids[-1] >= len(names):
                raise ClipReadError(classes_file, f"class id {ids[-1]} but only {len(names)} class names")
        else:
            names = tuple(f"class_{i}" for i in range(ids[-1] + 1))
        return names, {k: (int(v), names[int(v)]) for k, v in raw.items()}
    if values and values <= set(NED16):
        names = CLASS_SETS[class_set]
        return names, {k: ((names.index(v), v) if v in names else None) for k, v in raw.items()}
    names = tuple(sorted(values))
    return names, {k: (names.index(v), v) for k, v in raw.items()}


def scan_dataset(path: str | Path, class_set: str = "ned12", *, fps: float | None = None, strict: bool = False) -> Catalog:
    """Index a dataset (format auto-detected) without decoding pixels.

    Args:
        path: a NED root, an EV9V root, a folder of DICOM/video files, a frame folder, or one file.
        class_set: ``"ned12"`` or ``"ned16"``: the label space for NED views.
        fps: frame rate for formats without timing (NED, EV9V, frame folders); default 30.
        strict: raise on the first inconsistent item instead of skipping and counting it.

    Raises:
        ClipReadError: missing path, empty folder, nothing recognisable, or (strict) any bad item.
    """
    from echoweave.train.data import ev9v, ned

    if class_set not in CLASS_SETS:
        raise ClipReadError(path, f"unknown class set {class_set!r}; choose one of {sorted(CLASS_SETS)}")
    path = Path(path)
    if not path.exists():
        raise ClipReadError(path, "path not found")
    if path.is_file():
        return _scan_files([path], path, class_set, SkipLog(strict=True))
    if not any(path.iterdir()):
        raise ClipReadError(path, "folder is empty")
    if ev9v.looks_like_ev9v(path):
        return ev9v.scan_ev9v(path, class_set, fps=fps, strict=strict)
    if ned.looks_like_ned(path):
        return ned.scan_ned(path, class_set, fps=fps, strict=strict)
    from echoweave.edge.readers import list_frame_files

    frames = list_frame_files(path)
    if frames:
        ref = ClipRef(str(path), patient_from_name(path.name), None, None, len(frames), fps or 30.0, format="frames")
        return Catalog([ref], CLASS_SETS[class_set], format="frames", root=str(path))
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    return _scan_files(files, path, class_set, SkipLog(strict))


def _scan_files(files: list[Path], root: Path, class_set: str, skips: SkipLog) -> Catalog:
    from echoweave.edge.readers import detect_file_format, dicom_header_facts, video_stream_facts

    labels_csv = (root if root.is_dir() else root.parent) / "labels.csv"
    raw = read_two_column_csv(labels_csv, "names", "labels") if labels_csv.is_file() else {}
    class_names, resolved = resolve_labels(raw, class_set, labels_csv.with_name("classes.txt")) if raw else (CLASS_SETS[class_set], {})
    refs, kinds = [], set()
    for f in files:
        kind = detect_file_format(f)
        if kind not in ("dicom", "video"):
            continue  # labels.csv, README, thumbnails: not clips
        try:
            facts = dicom_header_facts(f) if kind == "dicom" else video_stream_facts(f)
        except ClipReadError as e:
            skips.skip(f, "unreadable file", e.problem)
            continue
        name = f.stem
        if name in resolved and resolved[name] is None:
            skips.skip(f, f"view outside class set {class_set}", raw[name])
            continue
        label, view = resolved.get(name) or (None, None)
        patient = facts.get("patient_id") or patient_from_name(name)
        refs.append(ClipRef(str(f), patient, label, view, facts["num_frames"], facts["fps"], format=kind))
        kinds.add(kind)
    if not refs and not skips.counts:
        raise ClipReadError(root, "no clips found: expected a NED or EV9V layout, DICOM or video files, or frame images")
    skips.log_summary(root)
    fmt = "+".join(sorted(kinds)) if kinds else "unknown"
    return Catalog(refs, class_names, dict(skips.counts), skips.messages, fmt, str(root))
