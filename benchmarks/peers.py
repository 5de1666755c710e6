"""Peer artifacts: what each toolchain's own documented recipe makes of the same checkpoint,
timed interleaved with the kit's artifact and checked against eager PyTorch on held-out windows.

    from echoweave.benchmarks.peers import PeerConfig, run_peers, peers_table, write_peers
    report = run_peers(PeerConfig("artifacts/tfw_r50", checkpoint="runs/tfw_r50", threads=[2]))
    print(peers_table(report))             # kit/peer ratio and accuracy per runtime and precision
    write_peers(report, "bench_out/r50")   # peers.json + peers.md

A *peer* is built from the checkpoint's per-frame method (``embed_frame``; the window method
``forward`` on request) by the toolchain's example flow and nothing else (`RECIPES`):

* ExecuTorch: ``torch.export`` -> (int8: ``XNNPACKQuantizer`` with
  ``get_symmetric_quantization_config(is_per_channel=True)`` set global, ``prepare_pt2e``,
  calibrate, ``convert_pt2e``) -> ``to_edge_transform_and_lower`` with ``XnnpackPartitioner``.
* ONNX Runtime: ``torch.onnx.export`` (dynamo); int8 ``quantize_static`` with its defaults, and
  with ``QuantFormat.QDQ``, activations ``QUInt8``, weights ``QInt8`` (U8S8).
* LiteRT: ``litert_torch.convert``; int8 litert-torch's PT2E flow (``PT2EQuantizer`` with the
  symmetric per-channel config, ``convert_pt2e(fold_quantize=False)``, ``QuantConfig``).

int8 peers calibrate on the same real training frames the kit's export calibrates on. Built
peers are cached under ``~/.cache/echoweave/peers`` keyed by the checkpoint's weights sha256,
the recipe, the method and the toolchain versions, so a rerun builds nothing.

Timing: each (runtime, precision, method, threads) runs the kit's artifact and its peers through
the same `echoweave.edge` runtime adapter (same session options, same call), one preprocessed
held-out frame (or window) per call, round-robin slices (`harness.run_interleaved`); the ratio
is kit median / peer median (> 1.00: the kit is slower). Accuracy: every artifact's
``embed_frame`` features of the held-out windows go through the *eager* fp32 ``classify_window``
(the same head for kit and peer), so the comparison isolates the per-frame artifact; reported
as top-1 agreement with eager ``forward``, accuracy against the labels, its difference from
eager in percentage points, and the feature SQNR. The kit's own streaming pair (its exported
head too) is reported beside it.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from echoweave.benchmarks.cells import Cell
from echoweave.edge.atomic import write_json_atomic, write_text_atomic
from echoweave.edge.errors import EchoweaveError

#: Bump when a builder changes what it writes (invalidates the cache).
RECIPE_VERSION = 1
CACHE = Path.home() / ".cache" / "echoweave" / "peers"
VERSIONED = ("torch", "torchao", "executorch", "onnx", "onnxruntime", "litert-torch", "ai-edge-litert")
METHODS = ("embed_frame", "forward")


class PeerError(EchoweaveError):
    """Peers cannot be built or compared as asked (no checkpoint, no kit artifact, bad option)."""


@dataclass(frozen=True)
class PeerRecipe:
    """One toolchain's documented recipe.

    Attributes:
        name: id used in reports and cache folders.
        runtime: the `echoweave.edge` runtime that runs it (and the kit's artifact it is compared with).
        format: manifest format of the artifact it writes.
        precision: ``fp32`` or ``int8``.
        recipe: one line saying what the recipe is, in the toolchain's own terms.
        build: ``(module, example, calibration, input names, dest file, method, sources) -> entry``,
            where ``entry`` is the method's name inside the file.
        suffix: file suffix.
        source: another recipe whose file this one starts from (ONNX int8 quantizes the fp32 peer).
    """

    name: str
    runtime: str
    format: str
    precision: str
    recipe: str
    build: Callable
    suffix: str
    source: str | None = None


# ---- builders (each imports its toolchain when it runs) ------------------------------------
def _calibrate(prepared, calibration) -> None:
    import torch

    with torch.no_grad():
        for sample in calibration:
            prepared(*sample)


def build_executorch(module, example, calibration, names, dest: Path, method: str, sources, quantize: bool) -> str:
    """ExecuTorch's XNNPACK example flow (``examples/xnnpack/aot_compiler.py``)."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = torch.export.export(module, example)
    if quantize:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = XNNPACKQuantizer()
        quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(program.module(), quantizer)
        _calibrate(prepared, calibration)
        program = torch.export.export(convert_pt2e(prepared), example)
    lowered = to_edge_transform_and_lower({method: program}, partitioner=[XnnpackPartitioner()])
    dest.write_bytes(lowered.to_executorch().buffer)
    return method


def build_onnx(module, example, calibration, names, dest: Path, method: str, sources) -> str:
    """``torch.onnx.export`` (dynamo exporter, weights inside the one file)."""
    import torch

    torch.onnx.export(module, example, str(dest), input_names=list(names), dynamo=True, external_data=False)
    return "main"


def build_ort_int8(module, example, calibration, names, dest: Path, method: str, sources, **options) -> str:
    """``onnxruntime.quantization.quantize_static`` of the fp32 ONNX peer with ``options`` only."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([dict(zip(names, (x.numpy() for x in sample))) for sample in calibration])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(sources["onnxruntime-fp32"]), str(dest), Reader(), **options)
    return "main"


def build_litert(module, example, calibration, names, dest: Path, method: str, sources, quantize: bool) -> str:
    """litert-torch's ``convert``; int8 through its PT2E quantizer (README flow)."""
    import litert_torch

    if not quantize:
        edge_model = litert_torch.convert(module, example)
    else:
        import torch
        from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(torch.export.export(module, example).module(), quantizer)
        _calibrate(prepared, calibration)
        converted = convert_pt2e(prepared, fold_quantize=False)
        edge_model = litert_torch.convert(converted, example, quant_config=QuantConfig(pt2e_quantizer=quantizer))
    edge_model.export(str(dest))
    return "serving_default"


def _ort_options(name: str) -> dict:
    from onnxruntime.quantization import QuantFormat, QuantType

    return {"ort-static-default": {},
            "ort-static-qdq-u8s8": {"quant_format": QuantFormat.QDQ, "activation_type": QuantType.QUInt8,
                                    "weight_type": QuantType.QInt8}}[name]


def _bind(fn, **kw):
    return lambda *a: fn(*a, **kw)


#: The peers of every runtime and precision, in report order (ONNX fp32 before the int8 peers built from it).
RECIPES: tuple[PeerRecipe, ...] = (
    PeerRecipe("executorch-xnnpack-fp32", "executorch", "executorch", "fp32",
               "torch.export -> to_edge_transform_and_lower(XnnpackPartitioner())",
               _bind(build_executorch, quantize=False), ".pte"),
    PeerRecipe("executorch-xnnpack-pt2e-int8", "executorch", "executorch", "int8",
               "XNNPACKQuantizer.set_global(get_symmetric_quantization_config(is_per_channel=True)), prepare_pt2e, "
               "calibrate, convert_pt2e -> to_edge_transform_and_lower(XnnpackPartitioner())",
               _bind(build_executorch, quantize=True), ".pte"),
    PeerRecipe("onnxruntime-fp32", "onnxruntime", "onnx", "fp32", "torch.onnx.export(dynamo=True)",
               build_onnx, ".onnx"),
    PeerRecipe("ort-static-default", "onnxruntime", "onnx", "int8",
               "quantize_static(fp32 peer, calibration reader) with its defaults (QDQ, S8S8, per-tensor)",
               lambda *a: build_ort_int8(*a, **_ort_options("ort-static-default")), ".onnx", "onnxruntime-fp32"),
    PeerRecipe("ort-static-qdq-u8s8", "onnxruntime", "onnx", "int8",
               "quantize_static(..., quant_format=QDQ, activation_type=QUInt8, weight_type=QInt8)",
               lambda *a: build_ort_int8(*a, **_ort_options("ort-static-qdq-u8s8")), ".onnx", "onnxruntime-fp32"),
    PeerRecipe("litert-torch-fp32", "litert", "litert", "fp32", "litert_torch.convert(module, sample_args)",
               _bind(build_litert, quantize=False), ".tflite"),
    PeerRecipe("litert-torch-pt2e-int8", "litert", "litert", "int8",
               "PT2EQuantizer.set_global(get_symmetric_quantization_config(is_per_channel=True)), prepare_pt2e, "
               "calibrate, convert_pt2e(fold_quantize=False) -> litert_torch.convert(quant_config=QuantConfig(...))",
               _bind(build_litert, quantize=True), ".tflite"),
)


# ---- configuration and inputs ------------------------------------------------------------------
@dataclass
class PeerConfig:
    """What to compare.

    Attributes:
        artifact_dir: the kit's export, ``artifacts/<model_id>`` with manifest.json.
        checkpoint: the checkpoint it was exported from (default: the manifest's source_checkpoint).
        runtimes: runtimes to compare (None = every installed runtime with a kit artifact).
        precisions: precisions to compare (None = those the kit exported).
        methods: ``embed_frame`` (the per-frame cost) and/or ``forward`` (the window).
        threads: thread counts (ExecuTorch only at its process-wide pool size).
        seconds: timed seconds per cell.
        chunk_seconds: interleaving slice.
        warmup: untimed calls per cell after loading.
        calib_clips: training clips the int8 peers calibrate on (2 windows each).
        held_out_windows: evenly spread windows per held-out clip for accuracy.
        held_out_clips: cap on held-out clips (None = all).
        cache_dir: where built peers are kept (empty: `CACHE`).
        progress: print a line per build and a progress bar while timing.
    """

    artifact_dir: str
    checkpoint: str | None = None
    runtimes: list[str] | None = None
    precisions: list[str] | None = None
    methods: list[str] = field(default_factory=lambda: ["embed_frame"])
    threads: list[int] = field(default_factory=lambda: [2])
    seconds: float = 10.0
    chunk_seconds: float = 0.5
    warmup: int = 3
    calib_clips: int = 8
    held_out_windows: int = 4
    held_out_clips: int | None = None
    cache_dir: str = ""
    progress: bool = True


@dataclass
class PeerData:
    """The checkpoint's model, its calibration frames and held-out windows, and eager references."""

    model: object
    meta: dict
    checkpoint: Path
    weights_sha256: str
    calibration: dict[str, list[tuple]]  # method -> batch-1 torch input tuples
    windows: np.ndarray  # (N, T, C, S, S) held-out, preprocessed
    labels: np.ndarray  # (N,)
    clips: int
    eager_logits: np.ndarray  # (N, K) eager forward
    eager_features: np.ndarray  # (N, T, D) eager embed_frame


def resolve_checkpoint(manifest: dict, checkpoint: str | None) -> Path | None:
    """The checkpoint folder: ``checkpoint`` if given, else the manifest's source checkpoint if it is still there."""
    from echoweave.train.engine.checkpoint import find_checkpoint

    candidate = checkpoint or (manifest.get("source_checkpoint") or {}).get("path")
    return find_checkpoint(candidate) if candidate and Path(candidate).exists() else None


def load_peer_data(folder: Path, cfg: PeerConfig, manifest: dict) -> PeerData:
    """Model, calibration (training frames, as the export's) and held-out windows of the checkpoint."""
    from echoweave.edge.manifest import sha256_file
    from echoweave.edge.preprocess import PreprocessSpec
    from echoweave.export.calibration import calibration_set, held_out_set
    from echoweave.export.pipeline import eager_features, eager_logits, load_checkpoint_model, load_dataset
    from echoweave.train.engine import checkpoint as ckpt

    model, meta, ckpt_folder = load_checkpoint_model(folder)
    if not model.streams_per_frame and "embed_frame" in cfg.methods:
        raise PeerError(f"{ckpt_folder}: {meta['model']['name']} has no per-frame method; use --peer_methods forward")
    spec, stride = PreprocessSpec(**meta["preprocessing"]), model.cfg.frame_stride
    store = load_dataset(meta, ckpt_folder)
    calib = calibration_set(store, meta, spec, model.frames, cfg.calib_clips, where=str(ckpt_folder), stride=stride)
    held = held_out_set(store, meta, spec, model.frames, cfg.held_out_windows, max_clips=cfg.held_out_clips,
                        stride=stride)
    if len(held) == 0:
        raise PeerError(f"{ckpt_folder}: no held-out clips to measure accuracy on")
    import torch

    calibration = {"forward": [(torch.from_numpy(np.array(w[None])),) for w in calib.windows],
                   "embed_frame": [(torch.from_numpy(np.array(f[None])),)
                                   for f in calib.windows.reshape(-1, *calib.windows.shape[2:])]}
    return PeerData(model, meta, ckpt_folder, sha256_file(ckpt_folder / ckpt.WEIGHTS), calibration, held.windows,
                    held.labels, len(set(held.clip_ids.tolist())), eager_logits(model, held.windows),
                    eager_features(model, held.windows) if model.streams_per_frame else None)


# ---- the cache and the builds ---------------------------------------------------------------
def toolchain_versions() -> dict[str, str]:
    """Installed versions of the toolchains a peer is built with (part of its cache key)."""
    from echoweave.benchmarks.hostinfo import package_versions

    return package_versions(VERSIONED)


def cache_key(weights_sha256: str, recipe: PeerRecipe, method: str, calib_clips: int) -> str:
    """Hash of what a peer depends on: the weights, the recipe, the method, calibration, versions."""
    text = json.dumps([weights_sha256, RECIPE_VERSION, recipe.name, recipe.recipe, method, calib_clips,
                       toolchain_versions()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def peer_artifact(recipe: PeerRecipe, method: str, data: PeerData, cfg: PeerConfig,
                  sources: dict[str, Path]) -> dict:
    """The peer's manifest-style artifact entry (``folder``, ``built``, ``build_s`` added), built or cached."""
    key = cache_key(data.weights_sha256, recipe, method, cfg.calib_clips)
    folder = Path(cfg.cache_dir or CACHE) / f"{data.weights_sha256[:12]}-{recipe.name}-{method}-{key}"
    record = folder / "peer.json"
    if record.is_file():
        entry = json.loads(record.read_text())
        return {**entry, "folder": str(folder), "built": False}
    if cfg.progress:
        print(f"[peers] build {recipe.name} {method} ...", flush=True)
    staging = folder.with_name(folder.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    file = f"{recipe.name}_{method}{recipe.suffix}"
    module = data.model.method_modules()[method].eval()
    example = data.model.example_inputs(method)
    names = [i["name"] for i in data.model.input_spec()["methods"][method]["inputs"]]
    t0 = time.perf_counter()
    entry_name = recipe.build(module, example, data.calibration.get(method, []), names, staging / file, method,
                              sources)
    build_s = time.perf_counter() - t0
    entry = {"id": f"peer:{recipe.name}", "format": recipe.format, "backend": recipe.runtime,
             "precision": recipe.precision, "recipe": recipe.recipe, "method": method,
             "files": [{"path": file, "bytes": (staging / file).stat().st_size}],
             "methods": {method: {"file": file, "entry": entry_name}}, "build_s": round(build_s, 1),
             "cache_key": key, "toolchain": toolchain_versions()}
    write_json_atomic(staging / "peer.json", entry, indent=1)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    if cfg.progress:
        print(f"[peers] build {recipe.name} {method}: done in {build_s:.1f} s", flush=True)
    return {**entry, "folder": str(folder), "built": True}


# ---- accuracy -----------------------------------------------------------------------------
def sqnr_db(reference: np.ndarray, got: np.ndarray) -> float:
    """10 log10(signal / noise) of ``got`` against ``reference`` (inf when equal)."""
    noise = float(np.sum((got.astype(np.float64) - reference) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(reference.astype(np.float64) ** 2)) / noise)


def eager_head_logits(model, features: np.ndarray) -> np.ndarray:
    """Eager fp32 ``classify_window`` of ``(N, T, D)`` features."""
    import torch

    with torch.no_grad():
        return model.classify_window(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))).numpy()


def artifact_accuracy(adapter, method: str, data: PeerData, own_head: bool = False) -> dict:
    """Agreement/accuracy of one artifact's ``method`` on the held-out windows (see the module docstring)."""
    windows, ref = data.windows, data.eager_logits
    out = {}
    if method == "embed_frame":
        feats = np.stack([np.concatenate([adapter.run("embed_frame", np.ascontiguousarray(f[None])) for f in w])
                          for w in windows]).astype(np.float32)  # (N, T, D)
        logits = eager_head_logits(data.model, feats)
        out["feature_sqnr_db"] = round(sqnr_db(data.eager_features, feats), 2)
        if own_head:
            own = np.concatenate([adapter.run("classify_window", f[None]) for f in feats])
            out["own_head"] = _scores(own, ref, data.labels)
    else:
        logits = np.concatenate([adapter.run("forward", np.ascontiguousarray(w[None])) for w in windows])
    return {**_scores(logits, ref, data.labels), **out}


def _scores(logits: np.ndarray, ref: np.ndarray, labels: np.ndarray) -> dict:
    acc, eager_acc = float(np.mean(logits.argmax(1) == labels)), float(np.mean(ref.argmax(1) == labels))
    return {"top1_agreement": float(np.mean(logits.argmax(1) == ref.argmax(1))), "accuracy": acc,
            "accuracy_delta_pp": round(100 * (acc - eager_acc), 2),
            "max_abs_logit_diff": float(np.max(np.abs(logits - ref))), "logit_sqnr_db": round(sqnr_db(ref, logits), 2)}


# ---- timing ----------------------------------------------------------------------------------
@dataclass
class PeerCell(Cell):
    """A timing cell of one artifact's method (kit or peer); ``label`` is its id."""

    label: str = ""

    @property
    def id(self) -> str:  # noqa: D401  (overrides Cell.id: kit and peer cells share runtime/precision)
        return self.label


def _thread_counts(runtime: str, threads: list[int]) -> tuple[list[int], list[dict]]:
    from echoweave.benchmarks.threads import executorch_skip_reason

    keep, skipped = [], []
    for t in threads:
        why = executorch_skip_reason(t) if runtime == "executorch" else None
        (skipped.append({"runtime": runtime, "threads": t, "reason": why}) if why else keep.append(t))
    return keep, skipped


def _open_cell(runtime: str, folder: Path, artifact: dict, precision: str, threads: int, method: str,
               label: str, x: np.ndarray, warmup: int) -> PeerCell:
    from echoweave.benchmarks.threads import apply_threads
    from echoweave.edge.runtime.base import open_runtime

    apply_threads(runtime, threads)
    cell = PeerCell(runtime, precision, threads, "stream" if method == "embed_frame" else "window", artifact,
                    label=label)
    t0 = time.perf_counter_ns()
    adapter = open_runtime(runtime, folder, artifact, threads=threads)
    cell.load_ms.append((time.perf_counter_ns() - t0) / 1e6)
    cell.clf = adapter
    cell.call = lambda: adapter.run(method, x)
    t0 = time.perf_counter_ns()
    cell.call()
    cell.first_ms = (time.perf_counter_ns() - t0) / 1e6
    for _ in range(warmup):
        cell.call()
    cell.warmup = warmup
    return cell


# ---- the run -------------------------------------------------------------------------------
def plan(manifest: dict, cfg: PeerConfig) -> tuple[list[tuple[dict, PeerRecipe]], list[dict]]:
    """``([(kit artifact, peer recipe)], skipped)`` for the runtimes/precisions asked and installed."""
    from echoweave.edge.runtime.base import RUNTIMES, runtime_available

    pairs, skipped = [], []
    for recipe in RECIPES:
        if cfg.runtimes and recipe.runtime not in cfg.runtimes or cfg.precisions and recipe.precision not in cfg.precisions:
            continue
        kit = [a for a in manifest["artifacts"] if a["format"] == RUNTIMES[recipe.runtime].format
               and a["precision"] == recipe.precision]
        if not runtime_available(recipe.runtime):
            skipped.append({"peer": recipe.name, "reason": f"runtime {recipe.runtime} not installed"})
        elif not kit:
            skipped.append({"peer": recipe.name, "reason": f"no kit {recipe.format} {recipe.precision} artifact in "
                                                           "the manifest to compare with"})
        else:
            pairs.append((kit[0], recipe))
    return pairs, skipped


def run_peers(cfg: PeerConfig) -> dict:
    """Build (or reuse) the peers, measure accuracy, time kit and peers interleaved; the report dict."""
    from echoweave.benchmarks.hostinfo import load_average
    from echoweave.edge.manifest import read_manifest

    bad = [m for m in cfg.methods if m not in METHODS]
    if bad or not cfg.methods:
        raise PeerError(f"peer methods must be a subset of {METHODS}, got {cfg.methods}")
    folder = Path(cfg.artifact_dir)
    manifest = read_manifest(folder)
    load_start = load_average()
    ckpt = resolve_checkpoint(manifest, cfg.checkpoint)
    if ckpt is None:
        raise PeerError(f"{folder}: no checkpoint to build peers from (pass --peer_checkpoint; the manifest's "
                        f"source_checkpoint {(manifest.get('source_checkpoint') or {}).get('path')!r} is not here)")
    pairs, skipped = plan(manifest, cfg)
    data = load_peer_data(ckpt, cfg, manifest)
    artifacts: dict[str, dict] = {}  # id -> entry with accuracy
    cells: list[PeerCell] = []
    comparisons = []
    for method in cfg.methods:
        sources: dict[str, Path] = {}
        for kit, recipe in pairs:
            try:
                peer = peer_artifact(recipe, method, data, cfg, sources)
            except Exception as exc:  # a recipe that fails is a finding, not a crash of the benchmark
                skipped.append({"peer": recipe.name, "method": method,
                                "reason": f"build failed: {type(exc).__name__}: {exc}"[:400]})
                continue
            sources[recipe.name] = Path(peer["folder"]) / peer["methods"][method]["file"]
            threads, why = _thread_counts(recipe.runtime, cfg.threads)
            skipped += [{**w, "peer": recipe.name} for w in why]
            ids = [_prepare(who, art_folder, art, recipe, method, threads, data, cfg, artifacts, cells)
                   for who, art_folder, art in (("kit", folder, kit), ("peer", Path(peer["folder"]), peer))]
            comparisons += [{"runtime": recipe.runtime, "precision": recipe.precision, "method": method,
                             "threads": t, "kit": ids[0], "peer": ids[1], "recipe": recipe.name} for t in threads]
    timing = _time_cells(cells, cfg, folder)
    rows = [_pair_row(comp, timing, artifacts) for comp in comparisons]
    return {
        "kind": "echoweave-peers", "schema_version": 1, "model_id": manifest["model_id"],
        "artifact_dir": str(folder), "checkpoint": str(data.checkpoint), "weights_sha256": data.weights_sha256,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_start": load_start, "load_average_end": load_average(),
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("progress",)},
        "held_out": {"windows": int(len(data.windows)), "clips": data.clips,
                     "eager_accuracy": float(np.mean(data.eager_logits.argmax(1) == data.labels)),
                     "how": "each artifact's embed_frame features through the eager fp32 classify_window "
                            "(forward: the artifact's own logits); agreement = top-1 equal to eager forward"},
        "artifacts": list(artifacts.values()),
        "cells": [{"id": k, **{f: x for f, x in v.items() if f != "samples_ms"}} for k, v in timing.items()],
        "pairs": rows, "verdicts": [line for r in rows for line in r["verdicts"]], "skipped": skipped,
        "toolchain": toolchain_versions(),
    }


def _prepare(who: str, folder: Path, art: dict, recipe: PeerRecipe, method: str, threads: list[int],
             data: PeerData, cfg: PeerConfig, artifacts: dict, cells: list) -> str:
    """Accuracy of one artifact (once) and its timing cells (one per thread count); returns its id."""
    from echoweave.edge.runtime.base import open_runtime

    aid = f"{'kit:' if who == 'kit' else ''}{art['id']}:{method}"
    if aid not in artifacts:
        adapter = open_runtime(recipe.runtime, folder, art, threads=max(threads or [1]))
        try:
            acc = artifact_accuracy(adapter, method, data, own_head=who == "kit" and method == "embed_frame")
        finally:
            adapter.close()
        artifacts[aid] = {"id": aid, "who": who, "runtime": recipe.runtime, "precision": recipe.precision,
                          "method": method, "artifact": art["id"],
                          "recipe": recipe.recipe if who == "peer" else art.get("notes", ""),
                          "built": art.get("built") if who == "peer" else None,
                          "build_s": art.get("build_s") if who == "peer" else None,
                          "bytes": _bytes(folder, art, method), "accuracy": acc}
    x = np.ascontiguousarray(data.windows[0, :1] if method == "embed_frame" else data.windows[:1])
    for t in threads:  # x: (1, C, S, S) or (1, T, C, S, S), a held-out frame or window
        label = f"{aid}:t{t}"
        if not any(c.label == label for c in cells):
            cells.append(_open_cell(recipe.runtime, folder, art, recipe.precision, t, method, label, x, cfg.warmup))
    return aid


def _time_cells(cells: list, cfg: PeerConfig, folder: Path) -> dict[str, dict]:
    """Round-robin timing of every cell (`harness.run_interleaved`); ``{label: stats}``."""
    from echoweave.benchmarks.cells import BenchConfig
    from echoweave.benchmarks.harness import run_interleaved
    from echoweave.benchmarks.stats import latency_stats

    if cells:
        run_interleaved(cells, BenchConfig(str(folder), seconds=cfg.seconds, chunk_seconds=cfg.chunk_seconds,
                                           progress=cfg.progress))
    for c in cells:
        c.clf.close()
    # ``samples_ms`` feeds the ratio intervals only; the report keeps the statistics (a
    # sub-millisecond model makes 10^4 calls per cell).
    return {c.label: {"latency_ms": latency_stats(c.samples), "samples": len(c.samples), "load_ms": c.load_ms[0],
                      "first_ms": c.first_ms, "samples_ms": c.samples} for c in cells}


def median_ratio_ci(kit_ms, peer_ms, confidence: float = 0.95, resamples: int = 2000) -> list[float] | None:
    """Percentile-bootstrap interval of median(kit) / median(peer) (each side resampled on its
    own; scipy.stats.bootstrap), or None with fewer than 5 calls on a side. A ratio above 1.00
    whose interval reaches below 1.00 is within the timing noise of this run."""
    if len(kit_ms) < 5 or len(peer_ms) < 5:
        return None
    from scipy.stats import bootstrap

    res = bootstrap((np.asarray(kit_ms, float), np.asarray(peer_ms, float)),
                    lambda k, p, axis: np.median(k, axis=axis) / np.median(p, axis=axis), vectorized=True,
                    paired=False, confidence_level=confidence, n_resamples=resamples, method="percentile",
                    random_state=np.random.default_rng(0))
    return [round(float(res.confidence_interval.low), 4), round(float(res.confidence_interval.high), 4)]


def _bytes(folder: Path, art: dict, method: str) -> int | None:
    path = Path(folder) / art["methods"][method]["file"]
    return path.stat().st_size if path.is_file() else None


def _pair_row(comp: dict, timing: dict, artifacts: dict) -> dict:
    """Ratio (kit/peer median), both accuracies and the one-line verdicts of one comparison."""
    t = comp["threads"]
    kit_t, peer_t = timing[f"{comp['kit']}:t{t}"], timing[f"{comp['peer']}:t{t}"]
    km, pm = kit_t["latency_ms"]["median"], peer_t["latency_ms"]["median"]
    ka, pa = artifacts[comp["kit"]]["accuracy"], artifacts[comp["peer"]]["accuracy"]
    ratio = km / pm if pm else None
    ci = median_ratio_ci(kit_t.get("samples_ms") or [], peer_t.get("samples_ms") or [])
    what = f"{comp['runtime']} {comp['precision']} {comp['method']} t{t}"
    verdicts = []
    if ratio is not None and ratio > 1.0:
        noise = f"; 95% interval [{ci[0]:.2f}, {ci[1]:.2f}]" + (", within this run's timing noise" if ci[0] <= 1.0
                                                                 else "") if ci else ""
        verdicts.append(f"SLOWER: kit {what} is {ratio:.2f}x the peer {comp['recipe']} ({km:.2f} vs {pm:.2f} ms "
                        f"median{noise})")
    if ka["top1_agreement"] < pa["top1_agreement"] or ka["accuracy"] < pa["accuracy"]:
        verdicts.append(f"LESS ACCURATE: kit {what} agrees {100 * ka['top1_agreement']:.1f}% / accuracy "
                        f"{100 * ka['accuracy']:.1f}% vs the peer {comp['recipe']} {100 * pa['top1_agreement']:.1f}% / "
                        f"{100 * pa['accuracy']:.1f}% on held-out windows")
    return {**comp, "kit_median_ms": km, "peer_median_ms": pm, "kit_p99_ms": kit_t["latency_ms"]["p99"],
            "peer_p99_ms": peer_t["latency_ms"]["p99"], "ratio": ratio, "ratio_ci95": ci,
            "significantly_slower": bool(ci is not None and ci[0] > 1.0),
            "kit_top1_agreement": ka["top1_agreement"], "peer_top1_agreement": pa["top1_agreement"],
            "kit_accuracy": ka["accuracy"], "peer_accuracy": pa["accuracy"],
            "kit_feature_sqnr_db": ka.get("feature_sqnr_db"), "peer_feature_sqnr_db": pa.get("feature_sqnr_db"),
            "slower": bool(ratio is not None and ratio > 1.0), "less_accurate": len(verdicts) > (ratio is not None
                                                                                             and ratio > 1.0),
            "verdicts": verdicts}


# ---- output ----------------------------------------------------------------------------------
def peers_table(report: dict) -> str:
    """Plain-text table: one row per comparison, then the verdict lines (or 'kit >= every peer')."""
    def pct(x):
        return "-" if x is None else f"{100 * x:5.1f}"

    def db(x):
        return "-" if x is None else f"{x:6.1f}"

    lines = [f"peers of {report['model_id']} (checkpoint {report['checkpoint']}), load average "
             f"{report['load_average_start']} -> {report['load_average_end']}; held-out {report['held_out']['windows']} "
             f"windows of {report['held_out']['clips']} clips, eager accuracy {pct(report['held_out']['eager_accuracy'])}%",
             "ratio = kit median / peer median (> 1.00: the kit is slower); agree/acc in %, feature SQNR in dB",
             f"{'runtime':<12} {'prec':<5} {'method':<12} {'thr':>3} {'peer recipe':<29} {'kit ms':>8} {'peer ms':>8} "
             f"{'ratio':>6} {'kit agr':>7} {'peer agr':>8} {'kit acc':>7} {'peer acc':>8} {'kit dB':>6} {'peer dB':>7}"]
    for r in report["pairs"]:
        lines.append(f"{r['runtime']:<12} {r['precision']:<5} {r['method']:<12} {r['threads']:>3} {r['recipe']:<29} "
                     f"{r['kit_median_ms']:8.3f} {r['peer_median_ms']:8.3f} {r['ratio']:6.2f} "
                     f"{pct(r['kit_top1_agreement']):>7} {pct(r['peer_top1_agreement']):>8} {pct(r['kit_accuracy']):>7} "
                     f"{pct(r['peer_accuracy']):>8} {db(r['kit_feature_sqnr_db']):>6} {db(r['peer_feature_sqnr_db']):>7}")
    lines += [""] + (report["verdicts"] or ["kit >= every peer: no ratio above 1.00 and no peer more accurate"])
    lines += [f"skipped {s.get('peer', '')} {s.get('method', '')}: {s['reason']}" for s in report["skipped"]]
    return "\n".join(lines)


def peers_markdown(report: dict) -> str:
    """The report as Markdown (table, verdicts, artifacts with recipe and build time)."""
    table = peers_table(report).splitlines()
    md = [f"# Peers of {report['model_id']}", "", f"Created {report['created_utc']}; checkpoint `{report['checkpoint']}` "
          f"(weights sha256 {report['weights_sha256'][:12]}); load average {report['load_average_start']} at start, "
          f"{report['load_average_end']} at end. {report['held_out']['how']}.", "",
          "| runtime | precision | method | threads | peer recipe | kit ms | peer ms | kit/peer | kit agree % | "
          "peer agree % | kit acc % | peer acc % | kit SQNR dB | peer SQNR dB |", "|" + "---|" * 14]
    for r in report["pairs"]:
        md.append(f"| {r['runtime']} | {r['precision']} | {r['method']} | {r['threads']} | {r['recipe']} | "
                  f"{r['kit_median_ms']:.3f} | {r['peer_median_ms']:.3f} | **{r['ratio']:.2f}** | "
                  f"{100 * r['kit_top1_agreement']:.1f} | {100 * r['peer_top1_agreement']:.1f} | "
                  f"{100 * r['kit_accuracy']:.1f} | {100 * r['peer_accuracy']:.1f} | {r['kit_feature_sqnr_db']} | "
                  f"{r['peer_feature_sqnr_db']} |")
    md += ["", "## Verdicts", ""] + [f"- {line}" for line in table[table.index("") + 1:]]
    md += ["", "## Artifacts", "", "| id | recipe / notes | bytes | build s | built now |", "|---|---|---|---|---|"]
    md += [f"| {a['id']} | {a['recipe']} | {a['bytes']} | {a['build_s'] if a['build_s'] is not None else '-'} | "
           f"{'-' if a['built'] is None else a['built']} |" for a in report["artifacts"]]
    return "\n".join(md) + "\n"


def write_peers(report: dict, out_dir: str | Path, stem: str = "peers") -> dict[str, Path]:
    """``<stem>.json`` and ``<stem>.md`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md"}
    write_json_atomic(paths["json"], json.loads(json.dumps(report, default=float)), indent=1)
    write_text_atomic(paths["markdown"], peers_markdown(report))
    return paths
