"""Golden vectors that hold android_demo's Kotlin core equal to the Python edge.

    .venv/bin/python tests/golden/make_golden.py            # rewrite the committed fixtures
    .venv/bin/python tests/golden/make_golden.py --out DIR  # write them elsewhere (the pytest does)

The Python edge (`echoweave.edge`) computes every expected value here; the Kotlin tests in
``android_demo/core/src/test/kotlin`` read the same inputs, run their port and compare: masks,
class ids and integers exactly, floats to ~1e-5. ``tests/test_android_golden.py`` regenerates the
set into a temporary folder and fails when the committed copy is stale.

Files (all small; < 1 MB together): JSON for structure and short vectors, ``.npy`` (numpy's own
format, little-endian) for pixel stacks and matrices. Everything is deterministic (fixed seeds,
sorted keys), so a regeneration on the same machine rewrites identical bytes.

Streams use a tiny linear model written in numpy (`LinearStreamModel`): ``embed_frame`` is a fixed
projection of the preprocessed frame, ``classify_window`` a fixed linear head on the T features.
Its weights are written out, so the Kotlin test runs the same model inside its own streaming
classifier; what is compared is everything *around* the model (sector policy, preprocessing, the
ring buffer, hop, resets, softmax and the uncertain flag).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from echoweave.edge.classifier import Classifier, Prediction, StreamingClassifier, softmax
from echoweave.edge.image import rgb_to_gray
from echoweave.edge.manifest import ManifestError, validate_manifest
from echoweave.edge.preprocess import PreprocessSpec, preprocess_frames, resize_weights
from echoweave.edge.sector import apply_sector, estimate_sector
from echoweave.edge.timeline import BACKGROUND, Segment, build_timeline, scan_workflow, view_change
from echoweave.edge.views import NED12
from echoweave.train.data.phantom import PhantomConfig, generate_clip, make_patient

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "android_demo" / "core" / "src" / "test" / "resources" / "golden"


class Writer:
    """Collects the fixture files of one generation into a folder."""

    def __init__(self, out: Path):
        self.out = out
        self._saved: dict[tuple, str] = {}  # identical arrays are stored once

    def npy(self, name: str, array: np.ndarray) -> str:
        key = (array.dtype.str, array.shape, np.ascontiguousarray(array).tobytes())
        if key in self._saved:
            return self._saved[key]
        self._saved[key] = name
        path = self.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        return name

    def json(self, name: str, data, compact: bool = False) -> str:
        path = self.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, sort_keys=True, separators=(",", ":")) if compact else json.dumps(data, indent=1, sort_keys=True)
        path.write_text(text + "\n")
        return name


def phantom_frames(frames: int, height: int, width: int, patient: int = 0, view: str = "APICAL_4C_LVRV",
                   text: bool = True) -> np.ndarray:
    """A grayscale phantom clip (T, H, W) uint8 with burned-in text and ECG strip outside the fan."""
    cfg = PhantomConfig(num_patients=1, clips_per_view=1, num_frames=frames, height=height, width=width,
                        burned_in_text=text, ecg_strip=text, seed=7)
    return generate_clip(view, make_patient(patient, cfg.seed), 0, cfg).frames


def tinted(gray: np.ndarray, seed: int) -> np.ndarray:
    """An RGB version of a gray clip with a little colour noise (what a frame grabber delivers)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-6, 7, gray.shape + (3,))
    return np.clip(gray[..., None].astype(np.int16) + noise, 0, 255).astype(np.uint8)


# ---- manifest ------------------------------------------------------------------------------

def example_manifest() -> dict:
    """A manifest shaped like the exporter's (two artifacts, quantization notes, parity)."""
    k, t, d, s = 12, 4, 64, 32
    io = lambda name, shape, layout: {"name": name, "shape": shape, "dtype": "float32", "layout": layout}  # noqa: E731
    return {
        "schema_version": 1,
        "model_id": "tfw_tiny",
        "model_version": "2026-11-21T23:00:00Z+0123456789ab",
        "model": {"name": "tfw", "backbone": "tiny", "frames": t, "input_size": s, "feature_dim": d},
        "classes": [{"id": i, "name": n} for i, n in enumerate(NED12)],
        "frames": t,
        "aggregation": "window",
        "uncertain_threshold": 0.5,
        "preprocessing": PreprocessSpec(resize=36, crop=32).to_dict(),
        "input_spec": {"model": "tfw", "backbone": "tiny", "frames": t, "input_size": s, "in_channels": 1,
                       "feature_dim": d, "num_classes": k, "pixel_range": [0.0, 1.0],
                       "normalization": {"mean": [0.5], "std": [0.25], "in_graph": True},
                       "methods": {"forward": {"inputs": [io("clip", [1, t, 1, s, s], "NTCHW")],
                                               "outputs": [io("logits", [1, k], "NK")]},
                                   "embed_frame": {"inputs": [io("frame", [1, 1, s, s], "NCHW")],
                                                   "outputs": [io("feature", [1, d], "ND")]},
                                   "classify_window": {"inputs": [io("features", [1, t, d], "NTD")],
                                                       "outputs": [io("logits", [1, k], "NK")]}}},
        "methods": ["forward", "embed_frame", "classify_window"],
        "artifacts": [
            {"id": "executorch_xnnpack_fp32", "format": "executorch", "backend": "xnnpack", "precision": "fp32",
             "files": [{"path": "tfw_tiny_xnnpack_fp32.pte", "sha256": "ab" * 32, "bytes": 123456}],
             "methods": {m: {"file": "tfw_tiny_xnnpack_fp32.pte", "entry": m} for m in ("forward", "embed_frame",
                                                                                      "classify_window")},
             "input_dtype": "float32", "output_dtype": "float32", "notes": "one multi-method program \u00e9"},
            {"id": "litert_int8", "format": "litert", "backend": "xnnpack", "precision": "int8",
             "files": [{"path": "tfw_tiny_q8.tflite", "sha256": "cd" * 32, "bytes": 65432}],
             "methods": {"embed_frame": {"file": "tfw_tiny_q8.tflite", "entry": "embed_frame"},
                         "classify_window": {"file": "tfw_tiny_q8.tflite", "entry": "classify_window"}},
             "input_dtype": "float32", "output_dtype": "float32"},
        ],
        "skipped": [{"format": "coreml", "precision": "int8", "reason": "not on Linux"}],
        "toolchain": {"echoweave": "0.1.0", "executorch": "1.5.1"},
        "parity": {"executorch_xnnpack_fp32": {"max_abs_diff": 1.5e-6, "top1_agreement": 1.0}},
        "metrics": {"accuracy": 0.75},
    }


def manifest_cases(w: Writer) -> None:
    """One valid manifest and broken variants, each judged by `validate_manifest`."""
    base = example_manifest()

    def variant(name: str, edit) -> dict:
        m = json.loads(json.dumps(base))
        edit(m)
        return {"name": name, "manifest": m}

    cases = [
        {"name": "valid", "manifest": base},
        variant("valid_int_threshold", lambda m: m.update(uncertain_threshold=1)),
        variant("valid_no_artifacts", lambda m: m.update(artifacts=[])),
        variant("missing_frames", lambda m: m.pop("frames")),
        variant("schema_newer", lambda m: m.update(schema_version=2)),
        variant("schema_zero", lambda m: m.update(schema_version=0)),
        variant("schema_string", lambda m: m.update(schema_version="1")),
        variant("classes_empty", lambda m: m.update(classes=[])),
        variant("classes_out_of_order", lambda m: m["classes"].reverse()),
        variant("aggregation_unknown", lambda m: m.update(aggregation="median")),
        variant("frames_zero", lambda m: m.update(frames=0)),
        variant("frames_float", lambda m: m.update(frames=4.0)),
        variant("threshold_above_one", lambda m: m.update(uncertain_threshold=1.5)),
        variant("threshold_string", lambda m: m.update(uncertain_threshold="0.5")),
        variant("artifact_missing_files", lambda m: m["artifacts"][0].pop("files")),
        variant("artifact_duplicate_id", lambda m: m["artifacts"][1].update(id=m["artifacts"][0]["id"])),
        variant("artifact_bad_format", lambda m: m["artifacts"][0].update(format="tensorrt")),
        variant("artifact_bad_precision", lambda m: m["artifacts"][0].update(precision="int4")),
        variant("method_unknown", lambda m: m["artifacts"][0]["methods"].update(train={"file": "tfw_tiny_xnnpack_fp32.pte"})),
        variant("method_names_other_file", lambda m: m["artifacts"][0]["methods"]["forward"].update(file="x.pte")),
        variant("path_absolute", lambda m: m["artifacts"][0]["files"][0].update(path="/sdcard/x.pte")),
        variant("path_parent", lambda m: m["artifacts"][0]["files"][0].update(path="../x.pte")),
        variant("valid_frame_stride", lambda m: m.update(frame_stride=2)),
        variant("frame_stride_zero", lambda m: m.update(frame_stride=0)),
        variant("frame_stride_float", lambda m: m.update(frame_stride=2.0)),
    ]
    for case in cases:
        try:
            validate_manifest(case["manifest"], "manifest.json")
            case.update(valid=True, error="")
        except ManifestError as exc:
            case.update(valid=False, error=str(exc))
    w.json("manifest/cases.json", {"cases": cases}, compact=True)
    w.json("manifest/example_manifest.json", base)


# ---- grayscale, resize weights, preprocessing ---------------------------------------------

def gray_cases(w: Writer) -> None:
    """RGB -> luma on the triples whose exact luma lies within 6e-6 of a rounding boundary
    (where a float32 sum, in whatever order, would round the other way; 39 are exact .5 ties),
    plus random triples. The exact luma is the float64 sum (see edge/image.py), so the selection
    is the same on every machine."""
    v = np.arange(256, dtype=np.uint8)
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    rgb = np.stack([r.ravel(), g.ravel(), b.ravel()], -1)  # (16.7M, 3)
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114], np.float32).astype(np.float64)
    hard = rgb[np.abs(luma - np.floor(luma) - 0.5) < 6e-6]
    rng = np.random.default_rng(3)
    sample = np.concatenate([hard, rng.integers(0, 256, (2000, 3), dtype=np.uint8)])  # (N, 3)
    w.npy("gray/rgb.npy", sample)
    w.npy("gray/expected.npy", rgb_to_gray(sample))


RESIZE_PAIRS = [(10, 4), (7, 7), (5, 9), (100, 32), (61, 45), (45, 61), (150, 37), (9, 3), (1, 3), (3, 1), (33, 232),
                (232, 224), (17, 16)]


def resize_cases(w: Writer) -> None:
    """Weights stored as a band per row (first non-zero column + the taps), the dense matrix
    being mostly zeros; the Kotlin test rebuilds the dense matrix and compares it bit for bit."""
    pairs = []
    for n_in, n_out in RESIZE_PAIRS:
        dense = resize_weights(n_in, n_out)  # (out, in)
        nonzero = dense != 0
        lo = np.where(nonzero.any(1), nonzero.argmax(1), 0).astype(np.int32)  # (out,)
        hi = np.where(nonzero.any(1), n_in - nonzero[:, ::-1].argmax(1), 0)
        width = int((hi - lo).max())
        band = np.zeros((n_out, width), np.float32)
        for i in range(n_out):
            band[i, : hi[i] - lo[i]] = dense[i, lo[i] : hi[i]]
        name = f"resize/w_{n_in}_{n_out}"
        pairs.append({"in": n_in, "out": n_out, "lo": w.npy(name + "_lo.npy", lo), "band": w.npy(name + "_band.npy", band)})
    w.json("resize/cases.json", {"cases": pairs})


def preprocess_cases(w: Writer) -> None:
    rng = np.random.default_rng(5)
    clip = phantom_frames(3, 60, 80)
    cases = [
        ("phantom_gray", clip, PreprocessSpec(resize=36, crop=32)),
        ("rgb_to_gray", rng.integers(0, 256, (2, 45, 37, 3), dtype=np.uint8), PreprocessSpec(resize=20, crop=16)),
        ("rgb_channels", rng.integers(0, 256, (2, 30, 26, 3), dtype=np.uint8),
         PreprocessSpec(grayscale=False, resize=24, crop=24)),
        ("portrait_odd_offsets", rng.integers(0, 256, (2, 50, 30), dtype=np.uint8), PreprocessSpec(resize=17, crop=15)),
        ("square", rng.integers(0, 256, (2, 40, 40), dtype=np.uint8), PreprocessSpec(resize=40, crop=33)),
        ("upsample", rng.integers(0, 256, (2, 12, 16), dtype=np.uint8), PreprocessSpec(resize=24, crop=20, scale=0.5)),
    ]
    out = []
    for name, frames, spec in cases:
        x = preprocess_frames(frames, spec)
        out.append({"name": name, "spec": spec.to_dict(), "input": w.npy(f"preprocess/{name}_in.npy", frames),
                    "expected": w.npy(f"preprocess/{name}_out.npy", x)})
    w.json("preprocess/cases.json", {"cases": out})


# ---- sector --------------------------------------------------------------------------------

def sector_cases(w: Writer) -> None:
    clip = phantom_frames(8, 48, 64)
    rng = np.random.default_rng(11)
    noisy = np.clip(clip.astype(np.int16) + rng.integers(-2, 3, clip.shape), 0, 255).astype(np.uint8)
    dark = np.zeros((1, 24, 32), np.uint8)
    dark[0, 2:5, 3:9] = 200  # one small bright label: too small to trust, whole image used
    cases = [
        ("phantom_motion", clip, {}),
        ("phantom_rgb", tinted(clip[:5], 12), {}),
        ("phantom_noisy", noisy, {}),
        ("phantom_given_params", clip, {"threshold": 2.0, "smooth": 5, "min_fraction": 0.1}),
        ("single_frame", clip[:1], {}),
        ("frozen_loop", np.repeat(clip[:1], 4, axis=0), {}),
        ("dark_whole_image", dark, {}),
    ]
    out = []
    for name, frames, kw in cases:
        sector = estimate_sector(frames, **kw)
        gray = rgb_to_gray(frames) if frames.ndim == 4 else frames
        entry = {"name": name, "kwargs": kw, "input": w.npy(f"sector/{name}_in.npy", frames),
                 "mask": w.npy(f"sector/{name}_mask.npy", sector.mask.astype(np.uint8)),
                 "bbox": list(sector.bbox), "method": sector.method,
                 "applied": w.npy(f"sector/{name}_applied.npy", apply_sector(frames, sector))}
        if len(gray) > 1:
            std = gray.std(0, dtype=np.float32)
            entry["std"] = w.npy(f"sector/{name}_std.npy", std)
            entry["percentile25"] = float(np.percentile(std, 25))
        out.append(entry)
    w.json("sector/cases.json", {"cases": out})


# ---- softmax / prediction ------------------------------------------------------------------

def softmax_cases(w: Writer) -> None:
    rng = np.random.default_rng(13)
    logits = [rng.normal(0, 3, 12).astype(np.float32) for _ in range(6)]
    logits += [np.array([2.0, 2.0, -1.0], np.float32),  # tie: first index wins, 0.5-ish confidence
               np.array([0.0, 0.0], np.float32),  # exactly 0.5 == threshold -> not uncertain
               np.array([1000.0, -1000.0, 3.0], np.float32),  # stability
               np.array([-3.5], np.float32)]
    cases = []
    for i, z in enumerate(logits):
        p = softmax(z)
        k = int(np.argmax(p))
        for thr in (0.5, 0.9):
            cases.append({"logits": [float(v) for v in z], "threshold": thr, "probabilities": [float(v) for v in p],
                          "class_id": k, "confidence": float(p[k]), "uncertain": bool(p[k] < thr)})
    w.json("softmax/cases.json", {"cases": cases})


# ---- streaming -----------------------------------------------------------------------------

def _given_sector(mask: np.ndarray):
    from echoweave.edge.classifier import _sector_from_mask

    return _sector_from_mask(mask)


class LinearStreamModel:
    """A runtime adapter running a fixed linear model in numpy (see the module docstring)."""

    name, version, reentrant = "golden-linear", "1", True

    def __init__(self, spec: PreprocessSpec, frames: int, dim: int, classes: int, seed: int):
        rng = np.random.default_rng(seed)
        n = spec.channels * spec.crop * spec.crop
        self.embed_w = (rng.normal(0, 1, (dim, n)) / math.sqrt(n)).astype(np.float32)  # (D, C*S*S)
        self.embed_b = rng.normal(0, 0.1, dim).astype(np.float32)  # (D,)
        self.head_w = (rng.normal(0, 3, (classes, frames * dim)) / math.sqrt(frames * dim)).astype(np.float32)
        self.head_b = rng.normal(0, 0.1, classes).astype(np.float32)  # (K,)

    def run(self, method: str, x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1).astype(np.float64)
        if method == "embed_frame":  # (1, C, S, S) -> (1, D)
            return (flat @ self.embed_w.T.astype(np.float64) + self.embed_b).astype(np.float32)
        if method == "classify_window":  # (1, T, D) -> (1, K)
            return (flat @ self.head_w.T.astype(np.float64) + self.head_b).astype(np.float32)
        raise ValueError(method)

    def close(self) -> None:
        pass


def stream_classifier(spec: PreprocessSpec, frames: int, classes: int, dim: int, seed: int,
                      threshold: float, frame_stride: int = 1) -> tuple[Classifier, LinearStreamModel]:
    manifest = {"model_id": "golden_linear", "classes": [{"id": i, "name": n} for i, n in enumerate(NED12[:classes])],
                "frames": frames, "aggregation": "window", "uncertain_threshold": threshold,
                "preprocessing": spec.to_dict()}
    if frame_stride != 1:  # the stride-1 fixtures predate the field
        manifest["frame_stride"] = frame_stride
    artifact = {"id": "golden_linear_fp32", "format": "executorch", "precision": "fp32", "methods": {},
                "input_dtype": "float32", "output_dtype": "float32"}
    model = LinearStreamModel(spec, frames, dim, classes, seed)
    return Classifier(Path("."), manifest, artifact, model), model


def _pred_dict(p: Prediction) -> dict:
    return {"class_id": p.class_id, "view": p.view, "confidence": p.confidence, "uncertain": p.uncertain,
            "frame_index": p.frame_index, "time_s": p.time_s, "windows": p.windows,
            "probabilities": [float(v) for v in p.probabilities]}


def _stream_events(clf: Classifier, opts: dict, segments: list, clips: dict, given: np.ndarray) -> list[dict]:
    """Push a scenario's frames through a `StreamingClassifier`; one event per frame."""
    kw = {k: v for k, v in opts.items() if k != "sector"}
    sector = {"auto": "auto", "none": None, "given": given}[opts["sector"]]
    stream = StreamingClassifier(clf, sector=sector, **kw)
    events = []
    for clip_name, start, stop in segments:
        for frame in clips[clip_name][start:stop]:
            pred = stream.push(frame)
            sec = stream.sector
            feature = stream._features[-1]  # the newest frame's feature
            events.append({
                "sector_updates": stream.sector_updates,
                "sector_bbox": None if sec is None else list(sec.bbox),
                "sector_method": None if sec is None else sec.method,
                "feature": [float(v) for v in feature],
                "prediction": None if pred is None else {
                    "class_id": pred.class_id, "view": pred.view, "confidence": pred.confidence,
                    "uncertain": pred.uncertain, "frame_index": pred.frame_index, "time_s": pred.time_s,
                    "probabilities": [float(p) for p in pred.probabilities]},
            })
    return events


def _clip_case(clf: Classifier, name: str, ref: tuple, hop: int, fps: float, sector_name: str, clips: dict,
               given: np.ndarray) -> dict:
    """`predict_windows` and `predict` on a slice ``(clip, start, stop)`` of a stored clip."""
    clip_name, start, stop = ref
    pixels = clips[clip_name][start:stop]
    sector = {"auto": "auto", "none": None, "given": _given_sector(given)}[sector_name]
    windows = clf.predict_windows(pixels, hop=hop, fps=fps, sector=sector)
    whole = clf.predict(pixels, hop=hop, fps=fps, sector=sector)
    return {"name": name, "clip": [clip_name, start, stop], "hop": hop, "fps": fps, "sector": sector_name,
            "windows": [_pred_dict(p) for p in windows], "clip_prediction": _pred_dict(whole)}


def _stream_clips() -> tuple[dict, np.ndarray]:
    """The clips the stream scenarios push (stored once) and the app-given sector mask."""
    main = phantom_frames(24, 36, 44)
    relabelled = main.copy()
    relabelled[:, :, :10] = np.where(relabelled[:, :, :10] > 0, 0, 255)  # static side region changes completely
    clips = {
        "main": main,
        "relabelled": relabelled[10:],
        "other_view": phantom_frames(12, 36, 44, patient=1, view="PSAX_AV"),
        "wide": phantom_frames(10, 30, 52, patient=2),
        "tinted": tinted(main[:10], 4),
    }
    given = np.zeros(main.shape[1:], bool)
    given[4:32, 6:40] = True
    return clips, given


def stream_cases(w: Writer) -> None:
    """Scenarios for the sector policy and the ring buffer; clips are stored once and each
    scenario pushes slices of them (``[clip, start, stop]``) in order."""
    spec = PreprocessSpec(resize=20, crop=16)
    clips, given = _stream_clips()
    scenarios = [
        ("auto_hop1", {"hop": 1, "sector": "auto", "sector_frames": 6}, [("main", 0, 24)]),
        ("auto_hop3_fps25", {"hop": 3, "sector": "auto", "sector_frames": 8, "fps": 25.0}, [("main", 0, 17)]),
        ("no_sector_hop2", {"hop": 2, "sector": "none"}, [("main", 0, 10)]),
        ("given_mask", {"hop": 1, "sector": "given"}, [("main", 0, 8)]),
        ("rgb_frames", {"hop": 1, "sector": "auto", "sector_frames": 5}, [("tinted", 0, 10)]),
        ("geometry_change", {"hop": 1, "sector": "auto", "sector_frames": 5},
         [("main", 0, 9), ("wide", 0, 10), ("main", 9, 16)]),
        ("static_region_change", {"hop": 1, "sector": "auto", "sector_frames": 5, "change_threshold": 10.0},
         [("main", 0, 10), ("relabelled", 0, 14)]),
        ("refresh_off", {"hop": 1, "sector": "auto", "sector_frames": 5, "refresh": False},
         [("main", 0, 10), ("relabelled", 0, 8)]),
        ("view_switch", {"hop": 1, "sector": "auto", "sector_frames": 6}, [("main", 0, 12), ("other_view", 0, 12)]),
    ]
    classes, frames, dim = 5, 4, 6
    threshold = 0.6
    clf, model = stream_classifier(spec, frames, classes, dim, seed=17, threshold=threshold)
    files = {name: w.npy(f"stream/clip_{name}.npy", clip) for name, clip in clips.items()}
    out = [{"name": name, "options": opts, "segments": [list(s) for s in segments],
            "events": _stream_events(clf, opts, segments, clips, given)} for name, opts, segments in scenarios]
    clip_cases = [_clip_case(clf, name, ref, hop, fps, sector_name, clips, given) for name, ref, hop, fps, sector_name in [
        ("main_hop1_auto", ("main", 0, 24), 1, 30.0, "auto"),
        ("main_hop5_off_fps25", ("main", 0, 24), 5, 25.0, "none"),
        ("short_clip_padded", ("main", 0, 2), 1, 30.0, "auto"),
        ("rgb_given_hop2", ("tinted", 0, 10), 2, 30.0, "given"),
    ]]
    w.json("stream/cases.json", {
        "clip_cases": clip_cases,
        "spec": spec.to_dict(), "frames": frames, "classes": list(NED12[:classes]), "feature_dim": dim,
        "uncertain_threshold": threshold, "clips": files, "given_mask": w.npy("stream/given_mask.npy", given.astype(np.uint8)),
        "model": {"embed_w": w.npy("stream/embed_w.npy", model.embed_w), "embed_b": w.npy("stream/embed_b.npy", model.embed_b),
                  "head_w": w.npy("stream/head_w.npy", model.head_w), "head_b": w.npy("stream/head_b.npy", model.head_b)},
        "scenarios": out}, compact=True)


def stream_stride_cases(w: Writer) -> None:
    """A model with ``frame_stride`` 2 (T = 3, so a window spans 5 frames): the stream's ring
    buffer holds 5 features and the head gets features 0, 2, 4 of them; whole clips slide windows
    of 5 frames and pad a clip shorter than 5 (also one of 3..4 frames, T or more but short of the span)."""
    spec = PreprocessSpec(resize=20, crop=16)
    clips, given = _stream_clips()
    classes, frames, dim, stride = 5, 3, 6, 2
    threshold = 0.6
    clf, model = stream_classifier(spec, frames, classes, dim, seed=29, threshold=threshold, frame_stride=stride)
    files = {name: w.npy(f"stream/clip_{name}.npy", clip) for name, clip in clips.items()}  # shared with stream/cases.json
    scenarios = [
        ("stride2_auto_hop1", {"hop": 1, "sector": "auto", "sector_frames": 6}, [("main", 0, 24)]),
        ("stride2_no_sector_hop2", {"hop": 2, "sector": "none"}, [("main", 0, 12)]),
        ("stride2_hop3_fps25", {"hop": 3, "sector": "given", "fps": 25.0}, [("main", 0, 16)]),
        ("stride2_geometry_change", {"hop": 1, "sector": "auto", "sector_frames": 5},
         [("main", 0, 9), ("wide", 0, 10), ("main", 9, 16)]),
        ("stride2_rgb", {"hop": 1, "sector": "auto", "sector_frames": 5}, [("tinted", 0, 10)]),
    ]
    out = [{"name": name, "options": opts, "segments": [list(s) for s in segments],
            "events": _stream_events(clf, opts, segments, clips, given)} for name, opts, segments in scenarios]
    clip_cases = [_clip_case(clf, name, ref, hop, fps, sector_name, clips, given) for name, ref, hop, fps, sector_name in [
        ("stride2_main_hop1_auto", ("main", 0, 24), 1, 30.0, "auto"),
        ("stride2_main_hop4_off_fps25", ("main", 0, 24), 4, 25.0, "none"),
        ("stride2_span_exact", ("main", 3, 8), 1, 30.0, "none"),
        ("stride2_shorter_than_span", ("main", 0, 4), 1, 30.0, "auto"),
        ("stride2_shorter_than_t", ("main", 0, 2), 1, 30.0, "none"),
        ("stride2_rgb_given_hop2", ("tinted", 0, 10), 2, 30.0, "given"),
    ]]
    w.json("stream/stride2_cases.json", {
        "clip_cases": clip_cases,
        "spec": spec.to_dict(), "frames": frames, "frame_stride": stride, "span": clf.span,
        "classes": list(NED12[:classes]), "feature_dim": dim,
        "uncertain_threshold": threshold, "clips": files, "given_mask": w.npy("stream/given_mask.npy", given.astype(np.uint8)),
        "model": {"embed_w": w.npy("stream/stride2_embed_w.npy", model.embed_w),
                  "embed_b": w.npy("stream/stride2_embed_b.npy", model.embed_b),
                  "head_w": w.npy("stream/stride2_head_w.npy", model.head_w),
                  "head_b": w.npy("stream/stride2_head_b.npy", model.head_b)},
        "scenarios": out}, compact=True)


# ---- timeline ------------------------------------------------------------------------------

def timeline_cases(w: Writer) -> None:
    """Prediction sequences -> `build_timeline(...).to_dict()` under several smoothing settings."""
    rng = np.random.default_rng(19)
    step = 4 / 30.0
    blocks = [(4, 30), (1, 12), (7, 25), (4, 6), (1, 2), (4, 20)]  # (view, windows): a scan with short visits
    ids = np.concatenate([np.full(n, v) for v, n in blocks])
    flicker = rng.random(len(ids)) < 0.12
    ids = np.where(flicker, rng.integers(0, 12, len(ids)), ids)
    conf = np.round(rng.uniform(0.3, 1.0, len(ids)), 4)
    times = np.arange(len(ids)) * step
    irregular = np.cumsum(rng.choice([0.1, 0.2, 0.3], 40))
    ties = np.array([0, 1, 2, 1, 0, 2, 2, 0, 1, 1, 0, 2])
    sequences = {
        "scan": (times, ids, conf),
        "irregular_times": (irregular, rng.integers(0, 3, 40), np.round(rng.uniform(0.2, 1.0, 40), 3)),
        "mode_ties": (np.arange(len(ties)) * 0.5, ties, np.array([0.9, 0.5, 0.7, 0.6, 0.8, 0.4, 0.9, 0.3, 0.5, 0.5, 0.6, 0.7])),
        "aba_and_abc": (np.arange(9) * 1.0, np.array([0, 0, 0, 1, 0, 0, 2, 3, 3]), np.full(9, 0.8)),
        "equal_neighbours": (np.arange(7) * 1.0, np.array([5, 5, 6, 7, 7, 8, 8]), np.full(7, 0.7)),
        "single": (np.array([2.0]), np.array([3]), np.array([0.4])),
        "empty": (np.zeros(0), np.zeros(0, int), np.zeros(0)),
        "evidential": (times[:60], ids[:60], conf[:60]),  # with an evidential uncertainty per window
    }
    evidential = np.round(rng.uniform(0.05, 1.0, 60), 4)
    settings = [
        {"smooth": 5, "min_segment_s": 1.0, "uncertain_as": None, "names": True},
        {"smooth": 1, "min_segment_s": 0.0, "uncertain_as": None, "names": True},
        {"smooth": 3, "min_segment_s": 2.0, "uncertain_as": "uncertain", "names": False},
        {"smooth": 7, "min_segment_s": 0.5, "uncertain_as": None, "names": False},
    ]
    threshold = 0.5
    cases = []
    for name, (t, c, p) in sequences.items():
        preds = [Prediction(NED12[int(k)], int(k), np.zeros(0), float(q), bool(q < threshold), i, float(ti), 0.0,
                            uncertainty=float(evidential[i]) if name == "evidential" else None)
                 for i, (ti, k, q) in enumerate(zip(t, c, p))]
        for st in settings:
            tl = build_timeline(preds, NED12 if st["names"] else None, smooth=st["smooth"],
                                min_segment_s=st["min_segment_s"], uncertain_as=st["uncertain_as"])
            cases.append({"name": name, "settings": st, "times": [float(x) for x in t], "class_ids": [int(x) for x in c],
                          "confidences": [float(x) for x in p], "uncertain": [bool(x < threshold) for x in p],
                          "expected": tl.to_dict(), "per_view_order": list(tl.stats["per_view"]),
                          **({"uncertainties": [float(x) for x in evidential]} if name == "evidential" else {}),
                          # scan_workflow of two settings (the whole set would push the fixtures past 1 MB)
                          **({"workflow": tl.workflow} if st in (settings[0], settings[2]) else {})})
    # The same facts as bare arrays (build_timeline's times/class_ids/confidences): nothing is uncertain and
    # views without a class name are named by their id.
    array_cases = []
    for name, which in (("scan", [2]), ("aba_and_abc", [0, 2]), ("single", [0, 2]), ("empty", [2])):
        t, c, p = sequences[name]
        for st in (settings[i] for i in which):
            tl = build_timeline([], NED12 if st["names"] else None, smooth=st["smooth"], min_segment_s=st["min_segment_s"],
                                uncertain_as=st["uncertain_as"], times=t, class_ids=c, confidences=p)
            array_cases.append({"name": name, "settings": st, "times": [float(x) for x in t],
                                "class_ids": [int(x) for x in c], "confidences": [float(x) for x in p],
                                "expected": tl.to_dict(), "per_view_order": list(tl.stats["per_view"])})
    try:
        build_timeline([], times=[0.0, 0.0], class_ids=[0, 1], confidences=[1.0, 1.0])
    except ValueError as exc:
        error = str(exc)
    w.json("timeline/cases.json", {"cases": cases, "array_cases": array_cases, "non_increasing_error": error},
           compact=True)


def _probe_scan(rng: np.random.Generator, classes: int) -> np.ndarray:
    """(N, K) probabilities of a scan: confident holds, a probe sweep between two views (belief
    moving), a direct cut, a flat search, an unsure view; rounded to 4 decimals (compact JSON)."""
    rows = []

    def hold(view, n, conc=8.0):
        a = np.full(classes, 0.3)
        a[view] = conc
        rows.extend(rng.dirichlet(a, n))

    def sweep(a, b, n):
        for i in range(n):
            base = np.full(classes, 0.02)
            base[a] += 1 - (i + 1) / (n + 1)
            base[b] += (i + 1) / (n + 1)
            rows.append(rng.dirichlet(base * 40))

    hold(0, 40)
    sweep(0, 2, 8)
    hold(2, 30)
    hold(3, 30)  # a direct cut from 2 to 3: no sweep
    rows.extend(rng.dirichlet(np.full(classes, 3.0), 10))  # searching: flat belief
    hold(0, 25)
    hold(1, 20, conc=1.6)  # a view the model is unsure of: many windows below the threshold
    return np.round(np.array(rows), 4)


def _dyadic_scan() -> tuple[np.ndarray, np.ndarray]:
    """Irregular dyadic times (multiples of 0.25 s, so t +- 1 s lands exactly on other windows) and
    dyadic probabilities: window means are exact, a steady stretch has a view change of exactly 0."""
    rng = np.random.default_rng(31)
    times = np.cumsum(rng.choice([0.25, 0.5, 0.75], 36))
    rows = {0: [0.75, 0.125, 0.125, 0.0], 1: [0.125, 0.75, 0.0, 0.125], 2: [0.25, 0.0, 0.5, 0.25]}
    views = [0] * 12 + [1] * 10 + [2] * 6 + [0] * 8
    return times, np.array([rows[v] for v in views])


def _one_hot_cut() -> tuple[np.ndarray, np.ndarray]:
    """Two views with certain (one-hot) beliefs and a direct cut: the window at the cut compares
    disjoint beliefs, a view change of exactly ln 2 (the maximum)."""
    p = np.zeros((16, 3))
    p[:8, 0] = 1.0
    p[8:, 2] = 1.0
    return np.arange(16) * 0.25, p


def timeline_background_cases(w: Writer) -> None:
    """The background rule of `build_timeline` (what `echoweave classify` runs: uncertain windows and,
    with ``view_change_s``, windows whose `view_change` is above the threshold become ``background``),
    with the per-window `view_change` values, and `scan_workflow` on timelines and on given segments."""
    rng = np.random.default_rng(37)
    threshold = 0.5  # the manifest's uncertain_threshold
    probe = _probe_scan(rng, 5)
    dyadic_t, dyadic_p = _dyadic_scan()
    cut_t, cut_p = _one_hot_cut()
    sequences = {
        "probe_scan": (np.arange(len(probe)) * (4 / 30.0), probe),
        "dyadic": (dyadic_t, dyadic_p),
        "one_hot_cut": (cut_t, cut_p),
        "single": (np.array([3.0]), np.array([[0.2, 0.7, 0.1]])),
        "empty": (np.zeros(0), np.zeros((0, 3))),
    }
    change = view_change(sequences["probe_scan"][0], probe, 1.0)
    # A window whose view change is well inside the values and far (> 1e-6) from every other window's:
    # thresholds 1e-9 below and above it flip that window alone, whatever the summation order.
    order = np.argsort(change)
    gaps = np.diff(change[order])
    pick = next(int(order[i]) for i in range(len(order) // 2, len(order) - 1)
                if gaps[i - 1] > 1e-6 and gaps[i] > 1e-6 and change[order[i]] > 0.05)
    v = float(change[pick])
    classify = {"smooth": 5, "min_segment_s": 1.0, "uncertain_as": BACKGROUND, "view_change_s": 1.0,
                "view_change_threshold": 0.15}  # echoweave classify's defaults
    raw = {**classify, "smooth": 1, "min_segment_s": 0.0}  # the rule per window, no smoothing
    settings = {
        "probe_scan": [classify, {**classify, "view_change_s": 0.0}, raw,
                       {"smooth": 3, "min_segment_s": 0.5, "uncertain_as": BACKGROUND, "view_change_s": 0.5,
                        "view_change_threshold": 0.3},
                       {**raw, "view_change_threshold": v - 1e-9}, {**raw, "view_change_threshold": v + 1e-9}],
        "dyadic": [classify, raw, {**raw, "view_change_threshold": 0.0}],
        "one_hot_cut": [raw, {**raw, "view_change_threshold": math.log(2)}, {**raw, "view_change_threshold": 0.69},
                        {**raw, "view_change_threshold": 0.0}],
        "single": [classify],
        "empty": [classify],
    }
    cases = []
    for name, (t, p) in sequences.items():
        ids = p.argmax(1) if len(p) else np.zeros(0, int)
        conf = p.max(1) if len(p) else np.zeros(0)
        preds = [Prediction(NED12[int(k)], int(k), p[i], float(conf[i]), bool(conf[i] < threshold), i, float(t[i]), 0.0)
                 for i, k in enumerate(ids)]
        for st in settings[name]:
            kw = {k: st[k] for k in ("smooth", "min_segment_s", "uncertain_as", "view_change_s", "view_change_threshold")}
            tl = build_timeline(preds, NED12, **kw)
            case = {"name": name, "settings": st, "expected": tl.to_dict(), "workflow": tl.workflow,
                    "per_view_order": list(tl.stats["per_view"])}
            cases.append(case)
    flags = [np.asarray(view_change(sequences["probe_scan"][0], probe, 1.0)) > x for x in (v - 1e-9, v + 1e-9)]
    assert flags[0][pick] and not flags[1][pick] and (flags[0] != flags[1]).sum() == 1
    exact = view_change(cut_t, cut_p, 1.0)
    assert exact.max() == math.log(2) and (exact == 0).sum() > 4
    assert (view_change(dyadic_t, dyadic_p, 1.0) == 0).sum() > 10
    try:
        build_timeline([Prediction("A", 0, np.ones(1), 1.0, False, 0, 0.0, 0.0)], view_change_s=1.0)
    except ValueError as exc:
        error = str(exc)

    def seg(view, cid, a, b, n=3, c=0.8):
        return Segment(view, cid, a, b, n, c)

    a4c, plax, psax = NED12[1], NED12[4], NED12[8]
    segment_cases = {
        "ground_truth": [seg(a4c, 1, 0.0, 12.0, 90, 1.0), seg(BACKGROUND, 12, 12.0, 13.5, 11, 1.0),
                         seg(a4c, 1, 13.5, 20.0, 48, 1.0), seg(plax, 4, 20.0, 31.0, 82, 1.0),
                         seg(BACKGROUND, 12, 31.0, 32.0, 8, 1.0), seg(a4c, 1, 32.0, 40.0, 60, 1.0),
                         seg(plax, 4, 40.0, 47.5, 56, 1.0), seg(psax, 8, 47.5, 50.0, 19, 1.0)],
        "uncertain_pseudo_view": [seg("uncertain", -1, 0.0, 1.0), seg(psax, 8, 1.0, 4.0, 22, 0.9),
                                  seg(plax, 4, 4.0, 6.5, 19, 0.7), seg("uncertain", -1, 6.5, 8.0, 11, 0.4),
                                  seg(psax, 8, 8.0, 9.0, 8, 0.6), seg(plax, 4, 9.0, 11.0, 15, 0.75),
                                  seg(psax, 8, 11.0, 12.0, 7, 0.65)],
        "only_background": [seg(BACKGROUND, -1, 0.0, 2.5), seg(BACKGROUND, 3, 2.5, 3.0)],
        "empty": [],
    }
    workflows = [{"name": name, "segments": [s.to_dict() for s in segs], "workflow": scan_workflow(segs),
                  "per_view_order": list(scan_workflow(segs)["per_view"])} for name, segs in segment_cases.items()]
    w.json("timeline/background_cases.json", {
        "classes": 5, "uncertain_threshold": threshold,
        # per sequence: the inputs and view_change(times, probabilities, half_s) for each half_s its cases use
        "sequences": {name: {"times": [float(x) for x in t], "probabilities": [[float(x) for x in row] for row in p],
                             "view_change": {str(h): [float(x) for x in view_change(t, p, h)]
                                             for h in sorted({st["view_change_s"] for st in settings[name]} - {0.0})}}
                      for name, (t, p) in sequences.items()},
        "boundary": {"window": pick, "view_change": v}, "cases": cases, "view_change_error": error,
        "workflow_cases": workflows}, compact=True)


# ---- latency statistics --------------------------------------------------------------------

def latency_cases(w: Writer) -> None:
    """benchmarks.stats.latency_stats / realtime_verdict (stream mode) on a few sample sets."""
    from echoweave.benchmarks.stats import latency_stats, realtime_verdict

    rng = np.random.default_rng(23)
    sets = {"lognormal_200": np.round(rng.lognormal(3.0, 0.3, 200), 3), "single": np.array([12.5]),
            "two": np.array([10.0, 30.0]), "tail": np.concatenate([np.full(95, 20.0), np.full(5, 80.0)]),
            "eleven": np.arange(11, dtype=float) * 3.0}
    cases = []
    for name, x in sets.items():
        st = latency_stats(x)
        cases.append({"name": name, "samples": [float(v) for v in x], "stats": st,
                      "verdict_30fps": realtime_verdict(st, "stream", 30.0, 4)})
    w.json("latency/cases.json", {"cases": cases}, compact=True)


# ---- entry point ---------------------------------------------------------------------------

SECTIONS = [manifest_cases, gray_cases, resize_cases, preprocess_cases, sector_cases, softmax_cases, stream_cases,
            stream_stride_cases, timeline_cases, timeline_background_cases, latency_cases]


def write_set(out: Path, sections, generated_by: str) -> Path:
    """Run ``sections`` into a fresh folder and swap it in for ``out`` atomically (built beside it,
    then renamed), with a README.json naming ``generated_by``; shared by make_golden_evidential."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the fixtures are ordinary repository files
    try:
        w = Writer(tmp)
        for section in sections:
            section(w)
        w.json("README.json", {"generated_by": generated_by, "numpy": np.__version__,
                               "note": "do not edit; regenerate with the script"})
        old = out.with_name(out.name + ".old")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def generate(out: Path) -> Path:
    """Write the whole golden set into ``out`` (replaced atomically: built beside it, then swapped)."""
    return write_set(out, SECTIONS, "tests/golden/make_golden.py")


def run_main(generate_fn, default_out: Path, description: str, argv: list[str] | None = None) -> int:
    """The scripts' command line: ``--out`` (default ``default_out``), then a one-line summary."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=default_out, help="folder to (re)write")
    args = parser.parse_args(argv)
    out = generate_fn(args.out)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {sum(1 for p in out.rglob('*') if p.is_file())} files, {total / 1024:.0f} KiB, to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(generate, DEFAULT_OUT, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
