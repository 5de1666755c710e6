"""Index the EV9V layout: ``<root>/Images/<video>/frame_000001.jpg…``, ``<root>/labels.csv``
(columns ``names,labels``), optional ``train.txt`` / ``validation.txt`` / ``test.txt`` listing
video names, optional ``classes.txt`` (class names for integer labels) and optional
``patients.csv`` (``names,patient_id``, written by `layout_writers.write_ev9v`).

Patient ids: EV9V publishes none, so without ``patients.csv`` the patient is guessed as the
video name up to its first ``_`` (``P012_a4c_3`` -> ``P012``). Check that your video names
follow that rule before trusting patient-wise splits.

Labels: integers are class ids; NED view names map into the chosen NED class set (views outside
it are skipped and counted); other names become their own classes in sorted order. Videos
without a label, labels without a folder, empty folders and videos listed in two split files are
skipped and counted (or raised with ``strict=True``).
"""
from __future__ import annotations

from pathlib import Path

from echoweave.edge.errors import ClipReadError
from echoweave.edge.readers import list_frame_files
from echoweave.train.data.catalog_base import Catalog, ClipRef, SkipLog, patient_from_name, read_two_column_csv, resolve_labels

SPLITS = ("train", "validation", "test")


def looks_like_ev9v(root: str | Path) -> bool:
    """True if ``root`` has an ``Images/`` folder and a ``labels.csv``."""
    root = Path(root)
    return (root / "Images").is_dir() and (root / "labels.csv").is_file()


def read_splits(root: Path) -> dict[str, str]:
    """Video name -> split from the split files that exist.

    Raises:
        ClipReadError: a video listed in two split files.
    """
    out: dict[str, str] = {}
    for split in SPLITS:
        f = root / f"{split}.txt"
        if not f.is_file():
            continue
        for name in f.read_text().split():
            if name in out and out[name] != split:
                raise ClipReadError(f, f"video {name!r} is listed in both {out[name]} and {split}")
            out[name] = split
    return out


def scan_ev9v(root: str | Path, class_set: str = "ned12", *, fps: float | None = None, strict: bool = False) -> Catalog:
    """Index an EV9V root.

    Args:
        root: folder holding ``Images/`` and ``labels.csv``.
        class_set: label space used when the labels are NED view names.
        fps: frame rate to record (EV9V frames carry none); default 30.
        strict: raise on the first inconsistency instead of skipping and counting.

    Returns:
        A `Catalog` with ``format="ev9v"``.
    """
    root = Path(root)
    raw = read_two_column_csv(root / "labels.csv", "names", "labels")
    class_names, resolved = resolve_labels(raw, class_set, root / "classes.txt")
    patients = read_two_column_csv(root / "patients.csv", "names", "patient_id") if (root / "patients.csv").is_file() else {}
    splits = read_splits(root)
    skips = SkipLog(strict)
    images = root / "Images"
    folders = {d.name: d for d in images.iterdir() if d.is_dir() and not d.name.startswith(".")}
    refs = []
    for name in sorted(raw):
        folder = folders.get(name)
        if folder is None:
            skips.skip(images / name, "video folder missing")
            continue
        n = len(list_frame_files(folder))
        if n == 0:
            skips.skip(folder, "no frame images")
            continue
        if resolved[name] is None:
            skips.skip(folder, f"view outside class set {class_set}", raw[name])
            continue
        label, view = resolved[name]
        patient = patients.get(name) or patient_from_name(name)
        refs.append(ClipRef(str(folder), patient, label, view, n, float(fps or 30.0), splits.get(name), "ev9v"))
    for name in sorted(set(folders) - set(raw)):
        skips.skip(folders[name], "video not in labels.csv")
    for name in sorted(set(splits) - set(raw)):
        skips.skip(root / f"{splits[name]}.txt", "split lists a video without a label", name)
    skips.log_summary(root)
    return Catalog(refs, class_names, dict(skips.counts), skips.messages, "ev9v", str(root))
