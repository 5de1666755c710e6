"""Real exported artifact folders for the edge runtime tests, made by ``echoweave export`` from the
tiny checkpoints (the conftest's ``tiny_checkpoint`` and a tiny image-model checkpoint).

Exporting takes minutes on a loaded 2-core machine (ExecuTorch lowering and LiteRT conversion
dominate), while tiny training is deterministic (same weights every session). So an export is
cached under ``.pytest_cache/`` keyed on the checkpoint's weights, the export/model/manifest
sources and the converter versions: the first run exports, later runs reuse.

    folder = exported_artifacts(tiny_checkpoint, formats=("executorch", "onnx", "litert"))
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".pytest_cache" / "echoweave-edge-artifacts"
ALL_FORMATS = ("executorch", "onnx", "litert")


def cache_key(checkpoint: str | Path, *extra: str) -> str:
    """Hash of what an export depends on: weights + checkpoint meta, export/model/manifest code, versions."""
    h = hashlib.sha256()
    ckpt = Path(checkpoint)
    for f in sorted(ckpt.glob("*.safetensors")) + sorted(ckpt.glob("*.json")):
        h.update(f.name.encode())
        if f.suffix == ".safetensors":
            h.update(f.read_bytes())
    sources = [*sorted((REPO / "export").glob("*.py")), *sorted((REPO / "train" / "models").glob("*.py")),
               REPO / "edge" / "manifest.py", REPO / "edge" / "formats.py", REPO / "edge" / "preprocess.py", REPO / "edge" / "derived_inputs.py",
               REPO / "edge" / "manifest.schema.json", REPO / "edge" / "evidential.py",
               Path(__file__)]
    for f in sources:
        h.update(f.read_bytes())
    for dist in ("torch", "executorch", "litert-torch", "onnx", "onnxruntime", "ai-edge-quantizer"):
        try:
            h.update(metadata.version(dist).encode())
        except metadata.PackageNotFoundError:
            pass
    for e in extra:
        h.update(e.encode())
    return h.hexdigest()[:16]


def exported_artifacts(checkpoint: str | Path, formats=ALL_FORMATS, precisions=("fp32",)) -> Path:
    """``echoweave export`` of ``checkpoint`` (cached on disk); returns the ``<model_id>`` folder."""
    key = cache_key(checkpoint, *formats, "|", *precisions)
    final = CACHE / f"export-{'-'.join(formats)}-{'-'.join(precisions)}-{key}"
    if (final / "manifest.json").is_file():
        return final
    from echoweave.cli import main

    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=CACHE))
    try:
        main(["export", str(checkpoint), "--out", str(work), "--formats", ",".join(formats),
              "--precisions", ",".join(precisions), "--threads", "1"])
        (model_dir,) = [p for p in work.iterdir() if (p / "manifest.json").is_file()]
        try:
            os.replace(model_dir, final)  # atomic: a concurrent run's folder wins, ours is dropped
        except OSError:
            pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def tiny_image_checkpoint(out: str | Path) -> Path:
    """A real trained tiny *image* (stage-1, mean-vote) checkpoint folder (about a second)."""
    from echoweave.train.engine.run import run_training
    from tests.helpers.tiny import tiny_config

    cfg = tiny_config(out, stage="image", model={"name": "image"}, optim={"epochs": 1})
    return Path(run_training(cfg, show_progress=False).checkpoint)
