"""Build a small but real artifact folder (manifest + ONNX / ExecuTorch / LiteRT files) for the
edge runtime tests, straight from a tiny model.

This is a test stand-in for ``echoweave export`` (written in parallel): it exports the model's
three methods (``forward``, ``embed_frame``, ``classify_window``) the way ARCHITECTURE.md
"Streaming" describes (ONNX: one file per method; ExecuTorch: one multi-method .pte lowered to
XNNPACK; LiteRT: one .tflite with three signatures) and writes a manifest with
`echoweave.edge.manifest.write_manifest`, so the runtime is tested against the fixed schema.

    folder = tiny_artifacts("tfw")

Exporting takes about a minute on a loaded 2-core machine (ExecuTorch lowering and LiteRT
conversion dominate), so the folders are cached on disk under ``.pytest_cache/`` keyed on a hash
of this file, the model sources and the converter versions: the first run builds, later runs reuse.
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from echoweave.edge.manifest import file_bytes, sha256_file, write_manifest
from echoweave.edge.preprocess import PreprocessSpec
from echoweave.edge.views import NED12

TINY_MODEL = {"backbone": "tiny", "width": 4, "feature_dim": 32, "gru_hidden": 16, "gru_layers": 1,
              "input_size": 32, "num_classes": 12, "frames": 4}
TINY_SPEC = PreprocessSpec(resize=36, crop=32)
ALL_FORMATS = ("onnx", "executorch", "litert")


def tiny_model(name: str = "tfw", seed: int = 0):
    """A seeded random-init tiny model in eval mode (fast to export; weights need not be trained)."""
    import torch

    from echoweave.train.models import ModelConfig, build_model

    torch.manual_seed(seed)
    return build_model(ModelConfig(name=name, **TINY_MODEL)).eval()


def _export_onnx(model, folder: Path, stem: str) -> dict:
    import torch

    embed, window = (m.eval() for m in model.streaming_modules())  # wrappers start in train mode
    methods, files = {}, []
    for method, module in (("forward", model), ("embed_frame", embed), ("classify_window", window)):
        path = folder / f"{stem}_{method}_fp32.onnx"
        args = model.example_inputs(method)
        torch.onnx.export(module, args, str(path), input_names=[_input_name(model, method)], output_names=["output"],
                          dynamo=False, opset_version=17)
        files.append(path.name)
        methods[method] = {"file": path.name, "entry": method}
    return {"id": "onnx_cpu_fp32", "format": "onnx", "backend": "cpu", "precision": "fp32", "files": files,
            "methods": methods}


def _export_executorch(model, folder: Path, stem: str) -> dict:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    embed, window = (m.eval() for m in model.streaming_modules())  # wrappers start in train mode
    programs = {m: torch.export.export(mod, model.example_inputs(m))
                for m, mod in (("forward", model), ("embed_frame", embed), ("classify_window", window))}
    et = to_edge_transform_and_lower(programs, partitioner=[XnnpackPartitioner()]).to_executorch()
    path = folder / f"{stem}_xnnpack_fp32.pte"
    path.write_bytes(et.buffer)
    return {"id": "executorch_xnnpack_fp32", "format": "executorch", "backend": "xnnpack", "precision": "fp32",
            "files": [path.name], "methods": {m: {"file": path.name, "entry": m} for m in programs}}


def _export_litert(model, folder: Path, stem: str) -> dict:
    import litert_torch

    embed, window = (m.eval() for m in model.streaming_modules())  # wrappers start in train mode
    conv = litert_torch.signature("forward", model, model.example_inputs("forward"))
    conv = conv.signature("embed_frame", embed, model.example_inputs("embed_frame"))
    conv = conv.signature("classify_window", window, model.example_inputs("classify_window"))
    path = folder / f"{stem}_fp32.tflite"
    conv.convert().export(str(path))
    return {"id": "litert_cpu_fp32", "format": "litert", "backend": "cpu", "precision": "fp32",
            "files": [path.name], "methods": {m: {"file": path.name, "entry": m} for m in
                                              ("forward", "embed_frame", "classify_window")}}


def _input_name(model, method: str) -> str:
    return model.input_spec()["methods"][method]["inputs"][0]["name"]


EXPORTERS = {"onnx": _export_onnx, "executorch": _export_executorch, "litert": _export_litert}


def build_artifacts(folder: str | Path, model, *, formats=ALL_FORMATS, spec: PreprocessSpec = TINY_SPEC,
                    model_id: str | None = None, uncertain_threshold: float = 0.5) -> Path:
    """Export ``model`` into ``folder`` in the given formats and write its manifest.

    Returns:
        The folder (holding ``manifest.json``).
    """
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model_id = model_id or f"{model.cfg.name}_tiny"
    torch.set_num_threads(1)
    artifacts = []
    with torch.no_grad():
        for fmt in formats:
            art = EXPORTERS[fmt](model, folder, model_id)
            art["files"] = [{"path": p, "sha256": sha256_file(folder / p), "bytes": file_bytes(folder / p)}
                            for p in art["files"]]
            art.update(input_dtype="float32", output_dtype="float32")
            artifacts.append(art)
    manifest = {
        "schema_version": 1,
        "model_id": model_id,
        "model_version": "test",
        "model": model.cfg.to_dict(),
        "classes": [{"id": i, "name": n} for i, n in enumerate(NED12[: model.num_classes])],
        "frames": model.frames,
        "aggregation": "mean_vote" if model.cfg.name == "image" else "window",
        "uncertain_threshold": uncertain_threshold,
        "preprocessing": spec.to_dict(),
        "input_spec": model.input_spec(),
        "methods": ["forward", "embed_frame", "classify_window"],
        "artifacts": artifacts,
        "skipped": [],
        "toolchain": {"torch": torch.__version__},
    }
    write_manifest(folder, manifest)
    return folder


REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".pytest_cache" / "echoweave-edge-artifacts"


def cache_key(*extra: str) -> str:
    """Hash of what the artifacts depend on: this file, the model sources, the converter versions."""
    h = hashlib.sha256()
    for f in [Path(__file__), *sorted((REPO / "train" / "models").glob("*.py"))]:
        h.update(f.read_bytes())
    for dist in ("torch", "executorch", "litert-torch", "onnx"):
        try:
            h.update(metadata.version(dist).encode())
        except metadata.PackageNotFoundError:
            pass
    for e in extra:
        h.update(e.encode())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def tiny_artifacts(name: str = "tfw", formats: tuple[str, ...] = ALL_FORMATS) -> Path:
    """A disk-cached artifact folder of the seeded tiny ``name`` model (built on first use)."""
    final = CACHE / f"{name}-{'-'.join(formats)}-{cache_key(name, *formats)}"
    if (final / "manifest.json").is_file():
        return final
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=CACHE))
    build_artifacts(tmp, tiny_model(name), formats=formats)
    try:
        os.replace(tmp, final)  # atomic: a concurrent builder's folder wins, ours is dropped
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
