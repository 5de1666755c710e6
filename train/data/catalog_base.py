"""The pieces every dataset scanner shares: `ClipRef`, `Catalog`, `SkipLog` and the label-CSV
helpers. `echoweave.train.data.catalog` (which detects the format) and the format scanners
(`ned`, `ev9v`) both build on this module, so neither has to import the other's caller.
"""
from __future__ import annotations

import csv
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from echoweave.edge.clip import Clip
from echoweave.edge.errors import ClipReadError
from echoweave.edge.views import CLASS_SETS, EV9V, NED16

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
    EV9V's view names (``PLHLA`` ... ``SC4C``) map into the ``ev9v`` set, in the reference's
    order, whatever ``class_set`` says; with ``class_set="ev9v"`` other names are reported as
    outside it; any other names become classes of their own, in sorted order.

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
    if values and (values <= set(NED16) or values <= set(EV9V) or class_set == "ev9v"):
        # A named view set: its fixed order (EV9V's labels keep the reference's class ids even
        # when a dataset lacks some views); views outside the chosen set are reported.
        names = CLASS_SETS["ev9v" if values <= set(EV9V) else class_set]
        return names, {k: ((names.index(v), v) if v in names else None) for k, v in raw.items()}
    names = tuple(sorted(values))
    return names, {k: (names.index(v), v) for k, v in raw.items()}
