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

`ClipRef`, `Catalog` and `SkipLog` live in `echoweave.train.data.catalog_base` (shared with the
`ned` and `ev9v` scanners this module calls) and are re-exported here.
"""
from __future__ import annotations

from pathlib import Path

from echoweave.edge.errors import ClipReadError
from echoweave.edge.views import CLASS_SETS
from echoweave.train.data import ev9v, ned
from echoweave.train.data.catalog_base import (  # noqa: F401  (re-exported: the catalog's public types)
    MAX_WARNINGS,
    Catalog,
    ClipRef,
    SkipLog,
    patient_from_name,
    read_two_column_csv,
    resolve_labels,
)


def scan_dataset(path: str | Path, class_set: str = "ned12", *, fps: float | None = None, strict: bool = False) -> Catalog:
    """Index a dataset (format auto-detected) without decoding pixels.

    Args:
        path: a NED root, an EV9V root, a folder of DICOM/video files, a frame folder, or one file.
        class_set: ``"ned12"`` or ``"ned16"``: the label space for NED views; ``"ev9v"``: EV9V's nine.
        fps: frame rate for formats without timing (NED, EV9V, frame folders); default 30.
        strict: raise on the first inconsistent item instead of skipping and counting it.

    Raises:
        ClipReadError: missing path, empty folder, nothing recognisable, or (strict) any bad item.
    """
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
