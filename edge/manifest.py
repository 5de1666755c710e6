"""`manifest.json`: the contract between export, the edge runtime, benchmarks and the apps.

One manifest per exported model folder ``artifacts/<model_id>/``. Plain JSON (no torch), read
by `echoweave.edge`, the benchmark harness and the Kotlin core of ``android_demo``::

    {
      "schema_version": 1,
      "model_id": "tfw_tiny",                      # folder name; file names start with it
      "model_version": "2026-11-21T23:00:00Z+<sha of weights[:12]>",
      "model": {...ModelConfig.to_dict()...},      # name, backbone, frames, input_size, ...
      "classes": [{"id": 0, "name": "APICAL_5C"}, ...],
      "frames": 4,                                 # T, window length
      "aggregation": "window" | "mean_vote",       # mean_vote: image model, per-frame probs averaged
      "uncertain_threshold": 0.5,                  # confidence below this -> "uncertain view"
      "preprocessing": {...PreprocessSpec.to_dict()...},
      "input_spec": {...EchoModel.input_spec()...},# shapes/dtypes/layouts of every method
      "methods": ["forward", "embed_frame", "classify_window"],
      "artifacts": [
        {"id": "executorch_xnnpack_fp32", "format": "executorch", "backend": "xnnpack",
         "precision": "fp32",
         "files": [{"path": "tfw_tiny_xnnpack_fp32.pte", "sha256": "...", "bytes": 123}],
         "methods": {"forward": {"file": "tfw_tiny_xnnpack_fp32.pte", "entry": "forward"},
                     "embed_frame": {...}, "classify_window": {...}},
         "input_dtype": "float32", "output_dtype": "float32",
         "notes": "..."},
        ...
      ],
      "skipped": [{"format": "coreml", "precision": "int8", "reason": "..."}],
      "toolchain": {"echoweave": "0.1.0", "torch": "2.14.1", "executorch": "1.5.1", ...},
      "parity": {...parity.json summary per artifact id...},
      "metrics": {...held-out metrics of the checkpoint...},
      "source_checkpoint": {"path": "...", "epoch": 6, "dataset": "phantom" | path}
    }

``format`` is one of `FORMATS`; ``entry`` is the method name inside a multi-method program
(ExecuTorch), the signature key (LiteRT), the function name (Core ML multifunction) or the
graph's file (ONNX, one file per method). Paths are relative to the manifest's folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from echoweave.edge.errors import EchoweaveError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
FORMATS = ("executorch", "onnx", "litert", "coreml")
PRECISIONS = ("fp32", "fp16", "int8")
METHODS = ("forward", "embed_frame", "classify_window")
AGGREGATIONS = ("window", "mean_vote")

_REQUIRED = ("schema_version", "model_id", "model", "classes", "frames", "aggregation", "uncertain_threshold",
             "preprocessing", "input_spec", "methods", "artifacts")
_ARTIFACT_REQUIRED = ("id", "format", "backend", "precision", "files", "methods")


class ManifestError(EchoweaveError, ValueError):
    """A manifest is missing, malformed, from a newer schema, or names a bad file."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file (or of every file under a folder, e.g. an .mlpackage, in sorted order)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


def file_bytes(path: str | Path) -> int:
    """Size of a file, or the total size of a folder (an .mlpackage)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def validate_manifest(data: Any, where: str = MANIFEST) -> dict:
    """Check structure and values; returns ``data`` unchanged or raises `ManifestError`."""
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: a manifest is a JSON object, got {type(data).__name__}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ManifestError(f"{where}: missing keys {missing}")
    version = data["schema_version"]
    if not isinstance(version, int) or version < 1:
        raise ManifestError(f"{where}: schema_version must be a positive integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise ManifestError(f"{where}: manifest schema {version} is newer than this echoweave understands "
                            f"({SCHEMA_VERSION}); upgrade echoweave")
    classes = data["classes"]
    if not classes or [c.get("id") for c in classes] != list(range(len(classes))):
        raise ManifestError(f"{where}: classes must be a non-empty list with ids 0..K-1 in order")
    if data["aggregation"] not in AGGREGATIONS:
        raise ManifestError(f"{where}: aggregation must be one of {AGGREGATIONS}, got {data['aggregation']!r}")
    if not isinstance(data["frames"], int) or data["frames"] < 1:
        raise ManifestError(f"{where}: frames must be a positive integer")
    thr = data["uncertain_threshold"]
    if not isinstance(thr, (int, float)) or not 0.0 <= thr <= 1.0:
        raise ManifestError(f"{where}: uncertain_threshold must be in [0, 1], got {thr!r}")
    ids = set()
    for i, art in enumerate(data["artifacts"]):
        miss = [k for k in _ARTIFACT_REQUIRED if k not in art]
        if miss:
            raise ManifestError(f"{where}: artifact {i} misses {miss}")
        if art["id"] in ids:
            raise ManifestError(f"{where}: duplicate artifact id {art['id']!r}")
        ids.add(art["id"])
        if art["format"] not in FORMATS or art["precision"] not in PRECISIONS:
            raise ManifestError(f"{where}: artifact {art['id']!r} has format {art['format']!r} / precision "
                                f"{art['precision']!r}; known {FORMATS} / {PRECISIONS}")
        paths = {f["path"] for f in art["files"]}
        for name, m in art["methods"].items():
            if name not in METHODS or m.get("file") not in paths:
                raise ManifestError(f"{where}: artifact {art['id']!r} method {name!r} must be one of {METHODS} "
                                    "and name one of the artifact's files")
        for f in art["files"]:
            if Path(f["path"]).is_absolute() or ".." in Path(f["path"]).parts:
                raise ManifestError(f"{where}: artifact file path {f['path']!r} must be relative to the folder")
    return data


def read_manifest(folder: str | Path) -> dict:
    """Read and validate ``folder/manifest.json``."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ManifestError(f"{path}: no manifest here (is this an artifacts/<model_id> folder?)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from exc
    return validate_manifest(data, str(path))


def write_manifest(folder: str | Path, data: dict) -> Path:
    """Validate and write ``folder/manifest.json`` atomically."""
    path = Path(folder) / MANIFEST
    validate_manifest(data, str(path))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".manifest.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=False)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def verify_artifact_files(folder: str | Path, artifact: dict) -> None:
    """Check every file of an artifact exists and matches its recorded sha256 and size.

    Raises:
        ManifestError: a file is absent, or was changed/tampered with since export.
    """
    for f in artifact["files"]:
        p = Path(folder) / f["path"]
        if not p.exists():
            raise ManifestError(f"{p}: artifact file named in the manifest is missing")
        if "bytes" in f and file_bytes(p) != f["bytes"]:
            raise ManifestError(f"{p}: size {file_bytes(p)} differs from the manifest's {f['bytes']} "
                                "(truncated or replaced)")
        digest = sha256_file(p)
        if digest != f["sha256"]:
            raise ManifestError(f"{p}: sha256 {digest[:12]}... does not match the manifest's "
                                f"{f['sha256'][:12]}... (file changed or tampered with)")


def find_artifact(manifest: dict, format: str | None = None, precision: str | None = None) -> list[dict]:
    """Artifacts matching a format and/or precision, in manifest order."""
    return [a for a in manifest["artifacts"]
            if (format is None or a["format"] == format) and (precision is None or a["precision"] == precision)]
