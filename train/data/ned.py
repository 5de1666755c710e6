"""Index the NED layout: ``<root>/<case>/<VIEW>/<clip>/img_00001.jpg…`` with one
``<root>/<case>/annotations.txt`` per case, lines ``VIEW/CLIP START END class_id``
(normally ``VIEW/CLIP 1 N class_id``).

Labels come from the annotations, cross-checked against the folders: the class id in a line is
the view's index in NED-16 (equal to its NED-12 index for the first 12 views) and must agree
with the view name. Anything inconsistent is skipped and counted by reason in
``Catalog.skipped`` (or raised with ``strict=True``), never given a wrong label:

- view not a NED view ("unknown view"); NED view outside the chosen set ("view outside class set");
- class id disagreeing with the view name; malformed or duplicate lines;
- clip folder missing; END not equal to the number of frames in the folder, or START outside it;
- clip folders that no annotation mentions; case folders without ``annotations.txt``.

The case folder name is the patient id. NED frames carry no timing: fps defaults to 30.
"""
from __future__ import annotations

from pathlib import Path

from echoweave.edge.readers import list_frame_files
from echoweave.edge.views import CLASS_SETS, NED16
from echoweave.train.data.catalog_base import Catalog, ClipRef, SkipLog

ANNOTATIONS = "annotations.txt"


def looks_like_ned(root: str | Path) -> bool:
    """True if ``root`` is a NED root (case folders with annotations.txt) or a single case."""
    root = Path(root)
    if (root / ANNOTATIONS).is_file():
        return True
    return any((d / ANNOTATIONS).is_file() for d in root.iterdir() if d.is_dir())


def _case_dirs(root: Path) -> list[Path]:
    if (root / ANNOTATIONS).is_file():
        return [root]
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def _scan_case(case: Path, names: tuple[str, ...], class_set: str, fps: float, skips: SkipLog) -> list[ClipRef]:
    ann = case / ANNOTATIONS
    clip_dirs = {f"{v.name}/{c.name}" for v in case.iterdir() if v.is_dir() for c in v.iterdir() if c.is_dir()}
    if not ann.is_file():
        for d in sorted(clip_dirs):
            skips.skip(case / d, "case has no annotations.txt")
        return []
    refs, seen = [], set()
    for lineno, line in enumerate(ann.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{ann}:{lineno}"
        parts = line.split()
        if len(parts) != 4 or "/" not in parts[0] or not all(p.lstrip("-").isdigit() for p in parts[1:]):
            skips.skip(where, "malformed annotation line", f"expected 'VIEW/CLIP START END class_id', got {line.strip()!r}")
            continue
        rel, (start, end, cid) = parts[0].strip("/"), map(int, parts[1:])
        view = rel.split("/")[0]
        if rel in seen:
            skips.skip(where, "duplicate annotation", rel)
            continue
        seen.add(rel)
        if view not in NED16:
            skips.skip(where, "unknown view", view)
            continue
        if cid != NED16.index(view):
            skips.skip(where, "class id disagrees with view", f"{view} is class {NED16.index(view)}, line says {cid}")
            continue
        folder = case / rel
        if not folder.is_dir():
            skips.skip(where, "clip folder missing", str(folder))
            continue
        n_files = len(list_frame_files(folder))
        if end != n_files or not 1 <= start <= end:
            skips.skip(where, "frame count mismatch", f"line says frames {start}..{end}, folder holds {n_files}")
            continue
        if view not in names:
            skips.skip(where, f"view outside class set {class_set}", view)
            continue
        refs.append(ClipRef(str(folder), case.name, names.index(view), view, end - start + 1, fps,
                            format="ned", frame_range=(start, end) if start != 1 else None))
    for d in sorted(clip_dirs - seen):
        skips.skip(case / d, "clip folder not in annotations.txt")
    return refs


def scan_ned(root: str | Path, class_set: str = "ned12", *, fps: float | None = None, strict: bool = False) -> Catalog:
    """Index a NED root (or a single case folder).

    Args:
        root: the NED root.
        class_set: ``"ned12"`` or ``"ned16"``; views outside it are skipped and counted.
        fps: frame rate to record (NED has none); default 30.
        strict: raise `ClipReadError` on the first inconsistency instead of skipping.

    Returns:
        A `Catalog` with ``format="ned"``.
    """
    root = Path(root)
    names = CLASS_SETS[class_set]
    skips = SkipLog(strict)
    refs = []
    for case in _case_dirs(root):
        refs += _scan_case(case, names, class_set, float(fps or 30.0), skips)
    skips.log_summary(root)
    return Catalog(refs, names, dict(skips.counts), skips.messages, "ned", str(root))
