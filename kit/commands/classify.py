"""`echoweave classify`: run an exported model on DICOM cines, videos or frame folders.

    echoweave classify loop.dcm --model artifacts/tfw_r50
    echoweave classify exams/ --model artifacts/tfw_r50 --runtime onnxruntime --precision int8 --csv out.csv
    echoweave classify scan.mp4 --model artifacts/tfw_r50 --timeline scan.png --json

Light module: only numpy and echoweave.edge (works in an ``.[edge]`` install without torch).
A clip that cannot be read prints an error line and the others go on; the exit status is 1 if
any clip failed.
"""
from __future__ import annotations

import csv as csv_lib
import io
import json as json_lib
import math
import sys
import tempfile
from pathlib import Path
from typing import Literal

from echoweave.edge.errors import EchoweaveError
from echoweave.edge.formats import runtime_names

#: ``--runtime`` choices: the format table's runtimes, in preference order (`echoweave.edge.formats`).
RuntimeName = Literal[runtime_names()]


def _write_csv(path: Path, results) -> None:
    from echoweave.edge.atomic import write_text_atomic

    cols = ["path", "ok", "view", "class_id", "confidence", "uncertainty", "uncertain", "runtime", "latency_ms", "frames",
            "duration_s", "sector_method", "via", "warnings", "error"]
    buf = io.StringIO(newline="")
    writer = csv_lib.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    for r in results:
        p = r.prediction
        writer.writerow({"path": r.path, "ok": r.ok, "view": p.view if p else "", "class_id": p.class_id if p else "",
                         "confidence": f"{p.confidence:.6f}" if p else "",
                         "uncertainty": f"{p.uncertainty:.6f}" if p and p.uncertainty is not None else "",
                         "uncertain": p.uncertain if p else "",
                         "runtime": p.runtime if p else "", "latency_ms": f"{p.latency_ms:.3f}" if p else "",
                         "frames": r.frames, "duration_s": f"{r.duration_s:.3f}",
                         "sector_method": p.sector_method if p else "", "via": p.via if p else "",
                         "warnings": "; ".join(p.warnings) if p else "",
                         "error": r.error or ""})
    write_text_atomic(path, buf.getvalue())


def check_output_file(value: str, flag: str, suffixes: tuple[str, ...], inputs: Path) -> Path:
    """Refuse an output path before any work: a folder, a wrong suffix, one of the inputs, or a
    place that cannot be written (probed with an anonymous temporary file, so nothing stays).

    Raises:
        EchoweaveError: naming the flag, the path and the problem.
    """
    out = Path(value)
    if out.is_dir():
        raise EchoweaveError(f"{flag} {out}: is a folder; give a file name such as {out / ('results' + suffixes[0])}")
    if out.suffix.lower() not in suffixes:
        raise EchoweaveError(f"{flag} {out}: must end in {' or '.join(suffixes)}")
    if out.exists() and inputs.exists() and (out.resolve() == inputs.resolve()):
        raise EchoweaveError(f"{flag} {out}: is the input itself; refusing to overwrite it")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise EchoweaveError(f"{flag} {out}: {parent} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise EchoweaveError(f"{flag} {out}: cannot write in {parent} ({exc.strerror or exc})") from None
    return out


def timeline_paths(out: Path, results, root: Path) -> dict[str, Path]:
    """Where each result's timeline goes: ``out`` for one; with several, ``out`` plus the clip's
    path below the input ``root`` (``timeline_a_scan_mp4.png``, ``timeline_b_scan_mp4.png``), so
    two clips of the same name in different folders never share a file."""
    with_timeline = [r for r in results if r.timeline is not None]
    if len(with_timeline) <= 1:
        return {r.path: out for r in with_timeline}
    paths, taken = {}, set()
    for r in with_timeline:
        clip = Path(r.path)
        rel = clip.relative_to(root) if root.is_dir() and clip.is_relative_to(root) else Path(clip.name)
        stem = f"{out.stem}_{'_'.join(rel.parts).replace('.', '_')}"
        name, n = stem, 1
        while name in taken:
            n += 1
            name = f"{stem}_{n}"
        taken.add(name)
        paths[r.path] = out.with_name(name + (out.suffix or ".png"))
    return paths


def _print_timeline(tl) -> None:
    st = tl.workflow
    shares = ", ".join(f"{v} {d['time_s']:.1f} s ({100 * d['share']:.0f}%)" for v, d in st["per_view"].items())
    print(f"    timeline: {st['segments']} segments, {st['transitions']} transitions over {st['total_s']:.1f} s: {shares}")
    visits = ", ".join(f"{v} x{st['per_view'][v]['visits']}" for v in st["order"])
    print(f"    workflow: {len(st['visit_sequence'])} visits, {max(len(st['visit_sequence']) - 1, 0)} view transitions, "
          f"background {st['background_s']:.1f} s; order {visits or '-'}")


def classify(path: str, model: str = "", runtime: RuntimeName | None = None,
             precision: Literal["fp32", "fp16", "int8"] | None = None, json: bool = False,
             csv: str | None = None, timeline: str | None = None, hop: int = 1, timeline_min_s: float = 10.0,
             fps: float | None = None, threads: int = 0, progress: bool = True, background: bool = True,
             view_change_s: float = 1.0, view_change_threshold: float = 0.15,
             sector_chunk_s: float = 1.0) -> None:
    """Classify the view of echo clips with an exported model (no torch needed).

    PATH is a DICOM file, a video file, a folder of frames, or a folder of any of these
    (searched recursively). Each clip prints its predicted view, confidence, an UNCERTAIN flag
    (confidence below the manifest's threshold), the runtime and the latency; recordings of at
    least --timeline_min_s seconds also get a scan timeline and workflow statistics (time, share
    and visits per view, the order of views, view-to-view transitions). The model has no
    background class, so in timelines ``background`` time (probe moving, no standard view) is
    where the model is unsure (confidence below the manifest's uncertain_threshold) or where its
    belief is changing (the Jensen-Shannon divergence between its mean probabilities over the
    --view_change_s seconds before and after a window above --view_change_threshold), unless
    --no-background.

    Args:
        path: DICOM/video file, frame folder, or a folder tree of them.
        model: Exported model folder (artifacts/<model_id>, holding manifest.json); required.
        runtime: Runtime to run the model with (default: the first installed one, in the order listed, that has
            an artifact).
        precision: fp32, fp16 or int8 (default: the first matching artifact in the manifest).
        json: Print all results as one JSON document instead of text lines.
        csv: Also write one CSV row per clip to this file.
        timeline: Write the timeline PNG (+ a .json with segments and statistics) here; with several clips,
            one file per clip named after it. Given, every clip gets a timeline.
        hop: Frames between the starts of consecutive windows.
        timeline_min_s: Recordings at least this long get a timeline even without --timeline.
        fps: Frame rate of frame folders (they carry none; default 30).
        threads: Runtime threads (ONNX Runtime, LiteRT; 0 = the runtime's default).
        progress: Show a progress bar when there are several clips (--no-progress hides it).
        background: In timelines, uncertain and view-changing windows are ``background`` time
            (--no-background: their most likely view).
        view_change_s: Seconds before and after a window compared by the view-change rule (0 = off:
            only uncertain windows are background).
        view_change_threshold: Jensen-Shannon divergence (nats, 0 to 0.69) above which a window counts as
            changing view.
        sector_chunk_s: Recordings that get a timeline find the fan on runs of this many seconds (0 =
            once over the whole recording, which over minutes of probe motion crops unlike any clip
            the model trained on).
    """
    if not model:
        raise EchoweaveError("--model is required (an exported artifacts/<model_id> folder holding manifest.json)")
    # Every option is checked before the model is loaded or a clip is read.
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise EchoweaveError(f"--fps must be a positive frame rate, got {fps}")
    if threads < 0:
        raise EchoweaveError(f"--threads must be 0 (the runtime's default) or a positive count, got {threads}")
    if hop < 1:
        raise EchoweaveError(f"--hop must be at least 1 frame, got {hop}")
    if sector_chunk_s < 0:
        raise EchoweaveError(f"--sector_chunk_s must be >= 0, got {sector_chunk_s}")
    if view_change_s < 0 or not 0 <= view_change_threshold <= math.log(2):
        raise EchoweaveError(f"--view_change_s must be >= 0 and --view_change_threshold in [0, ln 2 = 0.693], got "
                             f"{view_change_s} and {view_change_threshold}")
    if csv:
        check_output_file(csv, "--csv", (".csv",), Path(path))
    if timeline:
        check_output_file(timeline, "--timeline", (".png",), Path(path))
    from echoweave.edge.batch import classify_paths
    from echoweave.edge.classifier import load
    from echoweave.edge.timeline import BACKGROUND

    clf = load(model, runtime=runtime, precision=precision, threads=threads or None)
    results = classify_paths(clf, path, progress=None if progress and not json else False, hop=hop, fps=fps,
                             timeline_min_s=0.0 if timeline else timeline_min_s,
                             uncertain_as=BACKGROUND if background else None,
                             view_change_s=view_change_s if background else 0.0,
                             view_change_threshold=view_change_threshold, sector_chunk_s=sector_chunk_s)
    if not results:
        print(f"echoweave: error: {path}: no DICOM, video or frame folder found", file=sys.stderr)
        raise SystemExit(1)
    written = {}
    if timeline:
        pngs = timeline_paths(Path(timeline), results, Path(path))
        for r in results:
            if r.path in pngs:
                png = pngs[r.path]
                r.timeline.plot(png, title=f"{Path(r.path).name}: {clf.manifest['model_id']} ({clf.runtime})")
                r.timeline.write_json(png.with_suffix(".json"))
                written[r.path] = str(png)
    if csv:
        _write_csv(Path(csv), results)
    if json:
        doc = {"model": clf.describe(), "results": [r.to_dict() for r in results]}
        for r, d in zip(results, doc["results"]):
            if r.timeline is not None:
                d["workflow"] = r.timeline.workflow
            if d["path"] in written:
                d["timeline_png"] = written[d["path"]]
        print(json_lib.dumps(doc, indent=2, allow_nan=False))
    else:
        print(f"model {clf.manifest['model_id']}: {clf.artifact['id']} on {clf.runtime}")
        for r in results:
            print(r.summary())
            if r.timeline is not None and (timeline or r.duration_s >= timeline_min_s):
                _print_timeline(r.timeline)
                if r.path in written:
                    print(f"    timeline plot: {written[r.path]}")
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"echoweave classify: {len(failed)} of {len(results)} clips failed", file=sys.stderr)
        raise SystemExit(1)
