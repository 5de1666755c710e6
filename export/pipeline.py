"""Checkpoint -> ``artifacts/<model_id>/``: a straight line of named stages.

    load checkpoint -> build calibration set (real training clips) -> for each (format, precision):
    export -> quantize -> lower -> serialize (one converter call) -> verify (parity on held-out
    clips) -> manifest.json + parity.json + parity.md + MODEL_CARD.md

While a converter works it prints a line per format, precision, method and step
(`echoweave.export.progress`); the converters share what can be shared (`echoweave.export.shared`:
each method is `torch.export`-ed once per export for ExecuTorch fp32, ONNX and Core ML; ONNX int8
quantizes the fp32 graphs, LiteRT int8 the fp32 flatbuffer, Core ML int8 the fp16 conversion).
`python -m echoweave.benchmarks.export_time` measures where the time goes.

Everything is built in a staging folder next to the destination and renamed into place at the
end: on failure or Ctrl-C nothing half-written remains and an existing good export is untouched.

    from echoweave.export.pipeline import export_checkpoint
    result = export_checkpoint("runs/tfw", "artifacts", formats=["executorch", "onnx"])
"""
from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from echoweave.edge.errors import EchoweaveError
from echoweave.edge.formats import LiveSequence, default_formats
from echoweave.edge.manifest import MANIFEST, sha256_file, write_manifest
from echoweave.edge.preprocess import PreprocessSpec
from echoweave.export.formats import (
    CONVERTERS,
    ArtifactRecord,
    ExportError,
    ExportContext,
    load_converter,
    missing_package,
    unsupported_reason,
)
from echoweave.export.progress import Progress

#: The format table's default export set (`echoweave.edge.formats`; a live view).
DEFAULT_FORMATS = LiveSequence(default_formats)
DEFAULT_PRECISIONS = ("fp32", "int8")
BACKBONE_TAGS = {"resnet50": "r50", "resnet18": "r18", "mobilenet_v3_large": "mnv3", "mobilenet_v3_small": "mnv3s",
                 "tiny": "tiny"}
TOOLCHAIN_PACKAGES = ("echoweave", "torch", "torchvision", "torchao", "executorch", "onnx", "onnxruntime",
                      "onnxscript", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "coremltools", "numpy")


@dataclass
class ExportResult:
    """What `export_checkpoint` produced.

    Attributes:
        folder: the final ``out/<model_id>`` folder.
        manifest: the written manifest.
        parity: the parity report (also in ``parity.json``).
        skipped: ``[{"format", "precision", "reason"}]`` combinations not exported.
        timings: seconds per stage / artifact.
    """

    folder: Path
    manifest: dict
    parity: dict
    skipped: list[dict]
    timings: dict[str, float] = field(default_factory=dict)


# ---- stage: load checkpoint ------------------------------------------------------------------
def model_id_of(model_cfg: dict) -> str:
    """``<model name>_<backbone tag>``, e.g. ``tfw_r50``, ``tfw_tiny``, ``image_r18``."""
    return f"{model_cfg['name']}_{BACKBONE_TAGS.get(model_cfg['backbone'], model_cfg['backbone'])}"


def load_checkpoint_model(checkpoint: str | Path):
    """``(model eval fp32 CPU, meta, checkpoint folder)`` or a clear `ExportError`."""
    from echoweave.train.engine import checkpoint as ckpt
    from echoweave.train.engine.checkpoint import load_model
    from echoweave.train.models import list_models

    folder = ckpt.find_checkpoint(checkpoint)
    if folder is None:
        raise ExportError(f"{checkpoint}: no complete checkpoint here (expected {ckpt.WEIGHTS} + {ckpt.META} "
                          "in this folder, its checkpoints/ or an epoch_* folder)")
    meta = json.loads((folder / ckpt.META).read_text())
    missing = [k for k in ("model", "class_names", "preprocessing", "train") if k not in meta]
    if missing:
        raise ExportError(f"{folder / ckpt.META}: checkpoint metadata lacks {missing}; cannot export it")
    if meta["model"].get("name") not in list_models():
        raise ExportError(f"{folder / ckpt.META}: unknown model {meta['model'].get('name')!r}; "
                          f"known: {', '.join(list_models())}")
    model, meta = load_model(folder)
    return model.float().cpu().eval(), meta, folder


# ---- stage: destination checks and the staging folder --------------------------------------
def check_destination(dest: Path, model_id: str, model_cfg: dict, overwrite: bool) -> None:
    """Refuse to replace a folder holding a different model (or not an export) unless ``overwrite``."""
    if overwrite or not dest.exists():
        return
    if not dest.is_dir():
        raise ExportError(f"{dest}: exists and is not a folder; pass --overwrite to replace it")
    manifest_path = dest / MANIFEST
    if not manifest_path.is_file():
        if any(dest.iterdir()):
            raise ExportError(f"{dest}: holds files but no {MANIFEST} (not an echoweave export); "
                              "pass --overwrite to replace it")
        return
    try:
        old = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise ExportError(f"{manifest_path}: unreadable manifest ({exc}); pass --overwrite to replace it") from exc
    if old.get("model_id") != model_id or old.get("model") != model_cfg:
        raise ExportError(f"{dest}: holds a different model (model_id {old.get('model_id')!r}, config differs: "
                          f"{old.get('model') != model_cfg}); refusing to replace it. Pass --overwrite or "
                          "choose another --out")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def recover_interrupted(dest: Path) -> list[Path]:
    """Clean up after an export that was killed (``kill -9``, power loss) mid-way.

    Staging folders of dead processes are removed; if the kill came between moving the previous
    export aside and renaming the new one in, the previous export is put back. Returns what was
    removed or restored.
    """
    touched = []
    for pattern in (f".{dest.name}.staging-*", f".{dest.name}.old-*"):
        for path in sorted(dest.parent.glob(pattern)):
            pid = path.name.rsplit(".", 1)[-1].split("-")[1] if "-" in path.name else ""
            if not pid.isdigit() or _pid_alive(int(pid)):
                continue
            if ".old-" in path.name and not dest.exists():
                os.replace(path, dest)  # the previous good export, moved aside just before the kill
            else:
                shutil.rmtree(path, ignore_errors=True)
            touched.append(path)
    return touched


@contextlib.contextmanager
def staging_folder(dest: Path) -> Iterator[Path]:
    """A temporary folder next to ``dest``, renamed to ``dest`` when the block succeeds.

    On any exception (including KeyboardInterrupt) the staging folder is removed and ``dest``
    is left as it was. An existing ``dest`` is swapped out only after the new one is complete.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted(dest)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.staging-{os.getpid()}-"))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        old = None
        # Folder swaps (a whole export), not file writes: edge.atomic covers files only.
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{os.getpid()}-{int(time.time())}"
            os.replace(dest, old)
        try:
            os.replace(tmp, dest)
        except BaseException:
            if old is not None:
                os.replace(old, dest)  # put the previous good export back
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- stage: data --------------------------------------------------------------------------
def load_dataset(meta: dict, checkpoint: Path):
    """The checkpoint's dataset as a `ClipStore` (the phantom is regenerated from its config)."""
    from echoweave.train.config import TrainConfig
    from echoweave.train.engine.data import load_store

    data_cfg = TrainConfig.from_dict(meta["train"]).data
    try:
        store = load_store(data_cfg, show_progress=False)
    except EchoweaveError as exc:
        raise ExportError(f"{checkpoint}: cannot read the checkpoint's dataset {data_cfg.path!r} for calibration "
                          f"({exc})") from exc
    if list(store.class_names) != list(meta["class_names"]):
        raise ExportError(f"{checkpoint}: classes {meta['class_names']} differ from the dataset's "
                          f"{list(store.class_names)}")
    return store


def eager_logits(model, windows: np.ndarray, batch: int = 16) -> np.ndarray:
    """Eager fp32 ``forward`` logits ``(N, K)``."""
    import torch

    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(windows[i : i + batch])).numpy()
                               for i in range(0, len(windows), batch)])


def eager_features(model, windows: np.ndarray, batch: int = 64) -> np.ndarray:
    """Eager fp32 ``embed_frame`` features ``(N, T, D)`` of windows ``(N, T, C, S, S)``."""
    import torch

    frames = windows.reshape(-1, *windows.shape[2:])  # (N*T, C, S, S)
    with torch.no_grad():
        feats = np.concatenate([model.embed_frame(torch.from_numpy(frames[i : i + batch])).numpy()
                                for i in range(0, len(frames), batch)])
    return feats.reshape(windows.shape[0], windows.shape[1], -1)


# ---- plan ------------------------------------------------------------------------------------
def plan_exports(formats, precisions, model_name: str,
                 limits: dict[tuple[str, str], str] | None = None) -> tuple[list[tuple[str, str]], list[dict]]:
    """``(todo [(format, precision)], skipped [{format, precision, reason}])`` from the format
    table and the model's own declared limits (`VideoModel.export_limits`: ``{(format,
    precision or "*"): reason}``, e.g. a 3-D CNN that a runtime has no kernels for)."""
    limits = limits or {}
    todo, skipped = [], []
    for fmt in formats:
        if fmt not in CONVERTERS:
            raise ExportError(f"unknown format {fmt!r}; known: {', '.join(CONVERTERS)}")
        for prec in precisions:
            own = limits.get((fmt, prec)) or limits.get((fmt, "*"))
            reason = unsupported_reason(fmt, prec, model_name) or (f"{model_name}: {own}" if own else None) or \
                missing_package(fmt)
            if reason:
                skipped.append({"format": fmt, "precision": prec, "reason": reason})
            else:
                todo.append((fmt, prec))
    return todo, skipped


def toolchain_versions() -> dict[str, str]:
    """Installed versions of the packages an export depends on."""
    versions = {}
    for name in TOOLCHAIN_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


# ---- the pipeline ---------------------------------------------------------------------------
def export_checkpoint(checkpoint: str | Path, out: str | Path, formats=DEFAULT_FORMATS,
                      precisions=DEFAULT_PRECISIONS, calib_clips: int = 32, overwrite: bool = False,
                      uncertain_threshold: float = 0.5, model_id: str | None = None,
                      parity_clips: int | None = None, show_progress: bool = True, jobs: int = 1) -> ExportResult:
    """Export a checkpoint to ``out/<model_id>/`` (see the module docstring for the stages).

    Args:
        checkpoint: run, checkpoints or epoch folder.
        out: parent folder of the model folder.
        formats: subset of `CONVERTERS` (executorch, onnx, litert, coreml).
        precisions: fp32 / fp16 / int8; unsupported combinations are skipped with their reason.
        calib_clips: training clips used for int8 calibration (2 windows each).
        overwrite: replace a destination that holds a different model.
        uncertain_threshold: confidence below which the app says "uncertain view".
        model_id: override ``<name>_<backbone tag>``.
        parity_clips: cap on held-out clips used for parity/metrics (None = all).
        show_progress: print stage lines.
        jobs: worker processes converting side by side (`echoweave.export.parallel`; 1: one
            after the other in this process).

    Raises:
        ExportError: unusable checkpoint, empty calibration set, a destination holding another
            model, or a converter failure (named by format and precision).
    """
    if not 0.0 <= uncertain_threshold <= 1.0:
        raise ExportError(f"--uncertain_threshold must be in [0, 1], got {uncertain_threshold}")
    progress = Progress(show_progress)
    with progress.stage("load checkpoint"):
        model, meta, ckpt_folder = load_checkpoint_model(checkpoint)
        model_id = model_id or model_id_of(meta["model"])
        dest = Path(out) / model_id
        check_destination(dest, model_id, meta["model"], overwrite)
        spec = PreprocessSpec(**meta["preprocessing"])
    todo, skipped = plan_exports(formats, precisions, meta["model"]["name"], model.export_limits())
    if not todo:
        reasons = "; ".join(f"{s['format']} {s['precision']}: {s['reason']}" for s in skipped)
        raise ExportError(f"{ckpt_folder}: nothing to export, every requested combination is skipped ({reasons})")

    with progress.stage("build calibration set"):
        from echoweave.export.calibration import calibration_set, held_out_set

        store = load_dataset(meta, ckpt_folder)
        stride = model.cfg.frame_stride
        calib = calibration_set(store, meta, spec, model.frames, calib_clips, where=str(ckpt_folder), stride=stride)
        eval_windows = int((meta["train"].get("data") or {}).get("eval_windows", 4))
        held = held_out_set(store, meta, spec, model.frames, eval_windows, max_clips=parity_clips, stride=stride)
        if len(held) == 0:
            raise ExportError(f"{ckpt_folder}: no held-out clips (split.val_patients) in the dataset; "
                              "parity and the model card need them")
        if show_progress:
            print(f"[export] calibration: {len(calib)} windows of {len(set(calib.clip_ids))} training clips; "
                  f"held-out: {len(held)} windows of {len(set(held.clip_ids))} clips")

    for s in skipped:
        print(f"[export] skip {s['format']} {s['precision']}: {s['reason']}")

    with staging_folder(dest) as staging:
        ctx = ExportContext(
            model=model, model_id=model_id, out_dir=staging, calib_windows=calib.windows,
            calib_frames=calib.windows.reshape(-1, *calib.windows.shape[2:]),
            calib_features=eager_features(model, calib.windows) if model.streams_per_frame else None,
            example_inputs={m: model.example_inputs(m) for m in model.methods},
            class_names=list(meta["class_names"]), preprocessing=dict(meta["preprocessing"]), meta=meta)
        records = convert_all(ctx, todo, progress, ckpt_folder, jobs)
        manifest = build_manifest(staging, records, model, meta, ckpt_folder, model_id, skipped, uncertain_threshold)
        with progress.stage("verify: parity on held-out clips, through echoweave.edge"):
            report, metrics = verify(staging, manifest, model, held, meta, model_id, store)
        with progress.stage("write manifest, parity report and model card"):
            add_verification(manifest, report, metrics)
            from echoweave.export.model_card import model_card
            from echoweave.export.parity import write_parity

            write_parity(staging, report)
            (staging / "MODEL_CARD.md").write_text(model_card(model_id, meta, manifest, metrics, report))
            write_manifest(staging, manifest)
    if show_progress:
        print(f"[export] wrote {dest} ({len(records)} artifacts, {len(skipped)} skipped)")
    return ExportResult(dest, manifest, report, skipped, progress.timings)


def convert_all(ctx: ExportContext, todo: list[tuple[str, str]], progress: Progress,
                ckpt_folder: Path, jobs: int = 1) -> list[ArtifactRecord]:
    """Run each (format, precision) converter, with per-method progress lines; records in plan order.

    The converters share what can be shared (`echoweave.export.shared`: each method's
    `torch.export` once; ONNX int8 quantizes the fp32 graphs ONNX fp32 wrote; LiteRT int8 the fp32
    flatbuffer; Core ML int8 the fp16 conversion); the shared objects are dropped afterwards.
    With ``jobs > 1`` independent groups of converters run in forked workers
    (`echoweave.export.parallel`), after the shared fp32 traces are built once in this process.
    """
    from echoweave.export import parallel, shared

    def convert_group(group, prog: Progress) -> tuple[list[ArtifactRecord], dict]:
        records = []
        with prog.active():
            for fmt, prec in group:
                with prog.stage(f"{fmt} {prec}: export -> quantize -> lower -> serialize"):
                    try:
                        records.append(load_converter(fmt)(ctx, prec))
                    except (KeyboardInterrupt, ExportError):
                        raise
                    except Exception as exc:
                        raise ExportError(f"{ckpt_folder}: {fmt} {prec} export failed: "
                                          f"{type(exc).__name__}: {exc}") from exc
        return records, prog.timings

    groups = parallel.plan_groups(todo)
    unsafe = parallel.fork_unsafe_reason() if jobs > 1 and len(groups) > 1 else None
    if unsafe:
        progress.note(f"converters one after another, not in {jobs} workers: {unsafe}")
    try:
        if jobs <= 1 or len(groups) <= 1 or unsafe:
            return convert_group(todo, progress)[0]
        if any(key in shared.USERS for key in todo):
            with progress.active(), progress.stage("torch.export fp32 of every method (before the workers fork)"):
                for method in ctx.methods:
                    shared.exported_program(ctx, method)
        progress.note(f"{len(groups)} groups of converters in {min(jobs, len(groups))} worker processes "
                        "(one torch thread each): " + "; ".join(", ".join(f"{f} {p}" for f, p in g) for g in groups))
        results = parallel.run_parallel(groups, lambda g: convert_group(g, Progress(progress.show, progress.stream)),
                                        jobs)
        by_key = {}
        for group, (records, timings) in zip(groups, results):
            progress.timings.update(timings)
            by_key.update(zip(group, records))
        return [by_key[key] for key in todo]
    finally:
        shared.cache(ctx).clear()


def verify(folder: Path, manifest: dict, model, held, meta: dict, model_id: str, store):
    """Stage verify: open every staged artifact that can run here with the `echoweave.edge`
    runtime adapter and `Classifier` an app uses, and compare it with eager on the held-out windows.

    Returns:
        ``(parity report, held-out metrics {"window", "clip"} of eager fp32)``.
    """
    from scipy.special import softmax

    from echoweave.export.parity import parity_entry
    from echoweave.train.evaluation import clip_and_video_metrics

    reference = eager_logits(model, held.windows)
    features = eager_features(model, held.windows) if model.streams_per_frame else None
    names = list(meta["class_names"])
    result = clip_and_video_metrics(held.labels, softmax(reference, axis=1), names, held.clip_ids)
    metrics = {"window": result["clip"], "clip": result["video"]}
    rows = [parity_entry(folder, manifest, artifact, held.windows, held.labels, reference, eager_features=features)
            for artifact in manifest["artifacts"]]
    patients = sorted({str(store.patients[c]) for c in set(held.clip_ids.tolist())})
    report = {"model_id": model_id, "reference": "eager PyTorch fp32 forward",
              "held_out": {"windows": int(len(held)), "clips": int(len(set(held.clip_ids.tolist()))),
                           "patients": patients},
              "artifacts": rows}
    return report, metrics


def add_verification(manifest: dict, report: dict, metrics: dict) -> dict:
    """Fill the manifest's ``parity`` summary and eager held-out ``metrics`` after `verify`."""
    from echoweave.export.parity import summary

    manifest["parity"] = summary(report["artifacts"])
    manifest["metrics"]["held_out_eager"] = {level: {k: m[k] for k in ("n", "accuracy", "accuracy_ci95", "f1_macro")}
                                             for level, m in metrics.items() if m}
    return manifest


def build_manifest(folder: Path, records: list[ArtifactRecord], model, meta: dict, ckpt_folder: Path, model_id: str,
                   skipped: list[dict], uncertain_threshold: float) -> dict:
    """The manifest dict of the staged artifacts (parity and eager metrics come with
    `add_verification`; validated on write). Methods, aggregation and input spec are what the
    model declares."""
    from echoweave.train.engine import checkpoint as ckpt

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    weights_sha = sha256_file(ckpt_folder / ckpt.WEIGHTS)
    return {
        "schema_version": 1, "model_id": model_id, "model_version": f"{stamp}+{weights_sha[:12]}",
        "model": meta["model"],
        "classes": [{"id": i, "name": n} for i, n in enumerate(meta["class_names"])],
        "frames": int(model.frames),
        "frame_stride": int(model.cfg.frame_stride),
        "aggregation": model.aggregation,
        "uncertain_threshold": float(uncertain_threshold),
        "preprocessing": meta["preprocessing"], "input_spec": model.input_spec(), "methods": list(model.methods),
        "artifacts": [r.manifest_entry(folder) for r in records],
        "skipped": skipped, "toolchain": toolchain_versions(), "parity": {},
        "metrics": {"checkpoint": meta.get("metrics", {}), "held_out_eager": {}},
        "source_checkpoint": {"path": str(ckpt_folder), "epoch": meta.get("epoch"),
                              "dataset": (meta["train"].get("data") or {}).get("path"),
                              "weights_sha256": weights_sha},
        **_fusion(meta),
    }


def _fusion(meta: dict) -> dict:
    """``{"fusion": ...}`` for a model trained with the evidential loss: the edge fuses the
    evidence of key clips (`echoweave.edge.evidential`) and reports an uncertainty; else ``{}``."""
    optim = (meta.get("train") or {}).get("optim") or {}
    if optim.get("loss") != "reedl":
        return {}
    from echoweave.edge.evidential import DEFAULT_KEY_CLIPS

    return {"fusion": {"kind": "evidential", "prior": float(optim.get("evidence_prior", 0.8)),
                       "key_clips": DEFAULT_KEY_CLIPS}}
