"""Load an exported model and classify clips: `load`, `Classifier`, `Prediction`.

    import echoweave.edge as ew
    clf = ew.load("artifacts/tfw_tiny")                  # runtime picked from what is installed
    pred = clf.predict(ew.readers.read_clip("loop.dcm"))  # one Prediction for the whole clip
    pred.view, pred.confidence, pred.uncertain

Everything the model needs to know about its input (window length T, class names, the
preprocessing spec, the uncertainty threshold, whether the window is a mean vote) is read from
``manifest.json``; nothing is typed twice. Preprocessing is numpy only (`echoweave.edge.preprocess`).

Whole clips: windows of T frames slide over the clip with ``hop``; each frame is embedded once
(``embed_frame``) and each window classified from T features (``classify_window``), which equals
the exported window model (``forward``) on the same frames; the clip's probabilities are the mean
of the window probabilities. A clip shorter than T is padded by repeating its last frame (the
samplers' ``short="repeat"`` policy). The clip-level sector mask is estimated from all frames.

Models without the streaming split (manifest ``methods: ["forward"]``, e.g. a 3-D CNN) run the
exported ``forward`` on every window, whole clips and streams alike (`Prediction.via` says
``forward``); inputs the model derives from its pixels (manifest ``derive`` entries, e.g. frame
differences) are computed here by `echoweave.edge.derived_inputs` before each call
(docs/ARCHITECTURE.md "The model contract").

Mean-vote (image) models: their exported ``classify_window`` already returns the log of the mean
per-frame probability, so ``softmax`` of its output *is* the mean vote; it is not averaged again.

Streaming (`StreamingClassifier`, one frame at a time): a ring buffer of the last per-frame
features, so each new frame costs one backbone pass (``embed_frame``) plus the small window head
(``classify_window``); its window outputs equal the window model's on the same T frames. A model
with ``frame_stride`` k (manifest) sees every k-th frame: the buffer holds the ``(T - 1) * k + 1``
frames a window spans and the head gets every k-th of them, so a prediction still comes with
every frame.

Sector mask while streaming (a stream has no "whole clip" to estimate the fan from):

* ``sector=None`` never masks; a `Sector` (or an ``(H, W)`` bool mask) given by the app is used
  as is and never refreshed.
* ``sector="auto"`` (default): until ``sector_frames`` (16) frames have been seen the whole image
  is used; then the fan is estimated from those frames with `estimate_sector` (temporal change),
  and the features still in the ring buffer are recomputed with the new mask, so every window
  is preprocessed consistently. The mask is *refreshed* when the image changes: when the frame
  size changes (the window is then restarted), or when the static region outside the fan (text,
  depth scale, UI) departs from its reference, the mean over the estimation frames, by more than
  ``change_threshold`` grey levels of mean absolute difference (checked on a 4-pixel grid, so
  ~1/16 of the pixels). A refresh collects the next ``sector_frames`` frames while the old mask
  stays in use. If the estimate was only a fallback (no motion found), it is retried on the next
  ``sector_frames`` frames.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np

from echoweave.edge.clip import Clip
from echoweave.edge.evidential import DEFAULT_KEY_CLIPS, DEFAULT_PRIOR, fuse, key_clip_starts
from echoweave.edge.errors import ArtifactError, ClipReadError, EchoweaveError
from echoweave.edge.derived_inputs import DerivedInputError, derive, is_pairwise, min_frames
from echoweave.edge.manifest import (
    METHODS,
    STREAMING_METHODS,
    ManifestError,
    find_artifact,
    read_manifest,
    verify_artifact_files,
)
from echoweave.edge.preprocess import PreprocessSpec, preprocess_frames
from echoweave.edge.runtime.base import (
    PREFERENCE,
    RUNTIMES,
    RuntimeNotAvailable,
    open_runtime,
    require_runtime,
    runtime_available,
)
from echoweave.edge.sector import MAX_ESTIMATE_SIDE, Sector, apply_sector, estimate_sector, upscale_mask
from echoweave.edge.image import rgb_to_gray

__all__ = ["Classifier", "Prediction", "StreamInputError", "StreamingClassifier", "load", "open_artifact", "softmax"]

PIXEL_METHODS = ("forward", "embed_frame")  # methods whose input is pixels (quantized for int8 artifacts)
_DEFAULT_QUANT = {"uint8": {"scale": 1.0 / 255.0, "zero_point": 0}, "int8": {"scale": 1.0 / 255.0, "zero_point": -128}}


@dataclass
class Prediction:
    """One classification (a window, or a whole clip).

    Attributes:
        view: class name.
        class_id: index into the manifest's classes.
        probabilities: ``(K,)`` float64, sums to 1.
        confidence: the largest probability.
        uncertain: ``confidence < uncertain_threshold`` of the manifest.
        frame_index: 0-based index of the last frame the prediction saw.
        time_s: time of that frame in seconds.
        latency_ms: wall time spent producing it (preprocessing + runtime).
        runtime: the runtime that produced it.
        windows: number of windows averaged (1 for a window prediction).
        sector_method: how the fan was found: ``motion``, ``single_frame_brightness`` (a guess
            from one frame or a motionless clip), ``whole_image`` (nothing found), ``given`` (by
            the caller) or ``none`` (no masking); empty where not known.
        warnings: what the caller should know about this result, e.g. a clip shorter than the
            window that was padded.
        via: how the window was computed: ``features`` (each frame embedded once, the window
            head on the stored features) or ``forward`` (the whole window model on the frames:
            the reference path, and the only one for a model without the streaming split).
        uncertainty: evidential uncertainty in (0, 1] of a model trained with the evidential loss
            (manifest ``fusion``; `echoweave.edge.evidential`): ``N K prior / S`` over the N
            fused clips, 1 = no evidence at all; None for other models.
    """

    view: str
    class_id: int
    probabilities: np.ndarray
    confidence: float
    uncertain: bool
    frame_index: int
    time_s: float
    latency_ms: float
    runtime: str = ""
    windows: int = 1
    sector_method: str = ""
    warnings: list[str] = field(default_factory=list)
    via: str = ""
    uncertainty: float | None = None
    logits: np.ndarray | None = field(default=None, repr=False)  # a window's raw outputs (not in to_dict)

    def to_dict(self) -> dict:
        """JSON-ready dict (probabilities as a list)."""
        return {"view": self.view, "class_id": self.class_id, "confidence": round(self.confidence, 6),
                "uncertain": self.uncertain, "frame_index": self.frame_index, "time_s": round(self.time_s, 6),
                "latency_ms": round(self.latency_ms, 3), "runtime": self.runtime, "windows": self.windows,
                "sector_method": self.sector_method, "warnings": list(self.warnings), "via": self.via,
                "uncertainty": None if self.uncertainty is None else round(self.uncertainty, 6),
                "probabilities": [round(float(p), 6) for p in self.probabilities]}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis in float64 (stable)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def quantize(x: np.ndarray, dtype: str, q: dict) -> np.ndarray:
    """Affine quantization ``clip(rint(x / scale) + zero_point)`` to ``dtype`` (int8 or uint8)."""
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / q["scale"]) + q["zero_point"], info.min, info.max).astype(dtype)


def dequantize(q_values: np.ndarray, q: dict) -> np.ndarray:
    """Inverse of `quantize`: ``(q - zero_point) * scale`` as float32."""
    return ((q_values.astype(np.float32) - q["zero_point"]) * np.float32(q["scale"])).astype(np.float32)


def _describe(artifacts: list[dict]) -> str:
    return ", ".join(f"{a['id']} ({a['format']} {a['precision']})" for a in artifacts) or "no artifacts at all"


def select_artifact(manifest: dict, runtime: str | None, precision: str | None, where: str = "") -> tuple[str, dict]:
    """Pick ``(runtime name, artifact entry)`` for the request; errors list what exists.

    With ``runtime=None`` the first runtime of `PREFERENCE` that is installed and has an artifact
    (of ``precision``, if given) wins; among several matching artifacts the manifest order decides.
    """
    arts = manifest["artifacts"]
    if runtime is not None:
        info = require_runtime(runtime)
        found = find_artifact(manifest, format=info.format, precision=precision)
        if not found:
            want = f"{info.format} artifact" + (f" with precision {precision}" if precision else "")
            raise ManifestError(f"{where}: no {want} for runtime {runtime!r}; the manifest has: {_describe(arts)}")
        return runtime, found[0]
    candidates = find_artifact(manifest, precision=precision)
    if not candidates:
        raise ManifestError(f"{where}: no artifact with precision {precision!r}; the manifest has: {_describe(arts)}")
    for name in PREFERENCE:
        if not runtime_available(name):
            continue
        found = [a for a in candidates if a["format"] == RUNTIMES[name].format]
        if found:
            return name, found[0]
    needs = sorted({f"{n} (pip install {r.pip})" for n, r in RUNTIMES.items()
                    if any(a["format"] == r.format for a in candidates)})
    raise RuntimeNotAvailable(f"{where}: no installed runtime can run these artifacts ({_describe(candidates)}); "
                              f"install one of: {', '.join(needs)}")


def load(artifact_dir: str | Path, runtime: str | None = None, precision: str | None = None,
         threads: int | None = None) -> "Classifier":
    """Open an exported model folder for inference.

    Args:
        artifact_dir: ``artifacts/<model_id>`` holding ``manifest.json``.
        runtime: ``executorch``, ``onnxruntime``, ``litert`` or ``coreml``; None picks the first
            installed one in that order that has an artifact.
        precision: ``fp32``, ``fp16`` or ``int8``; None takes the first matching artifact.
        threads: runtime threads where the engine lets a caller choose (ONNX Runtime, LiteRT).

    Returns:
        A `Classifier`.

    Raises:
        ManifestError: no/invalid/newer manifest, no artifact for the request (the message lists
            what exists), an artifact file missing or changed (sha256).
        RuntimeNotAvailable: the runtime is not installed (names the pip package) or not usable here.
    """
    folder = Path(artifact_dir)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    manifest = read_manifest(folder)
    name, artifact = select_artifact(manifest, runtime, precision, str(folder))
    return open_artifact(folder, manifest, artifact, name, threads)


def open_artifact(folder: str | Path, manifest: dict, artifact: dict, runtime: str,
                  threads: int | None = None) -> "Classifier":
    """Open one artifact entry of ``manifest`` with ``runtime``: the files are checked against
    their sha256, the engine loads them, each method's input shape is compared with the
    manifest's. `load` calls it after choosing; the export's parity stage calls it on the staged
    folder, so parity runs exactly the code an app runs.

    Raises:
        ManifestError: a file missing or changed; the runtime does not read this format.
        RuntimeNotAvailable: the runtime is not installed or not usable here.
        ArtifactError: the engine cannot load the files, or a method's shape differs.
    """
    folder = Path(folder)
    verify_artifact_files(folder, artifact)
    try:
        adapter = open_runtime(runtime, folder, artifact, threads=threads)
    except EchoweaveError:
        raise
    except Exception as exc:  # each engine raises its own types (RuntimeError, ValueError, InvalidProtobuf...)
        raise ArtifactError(f"{_artifact_where(folder, artifact)}: {runtime} cannot load it ({_one_line(exc)})") from None
    try:
        check_method_shapes(folder, manifest, artifact, adapter)
    except BaseException:
        adapter.close()
        raise
    return Classifier(folder, manifest, artifact, adapter)


def _one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or "no message"
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _artifact_where(folder: Path, artifact: dict, method: str | None = None) -> str:
    files = sorted({m["file"] for m in artifact["methods"].values()}) if method is None else \
        [artifact["methods"][method]["file"]]
    what = f"method {method!r} of " if method else ""
    return f"{folder}: {what}artifact {artifact['id']!r} ({', '.join(files)})"


def check_method_shapes(folder: Path, manifest: dict, artifact: dict, adapter) -> None:
    """Compare each method's input shape, where the runtime declares one, with the manifest's.

    A method whose ``file`` points at another method's graph loads fine in ONNX Runtime and
    would fail only on the first call; here it fails at load, naming the artifact.

    Raises:
        ArtifactError: rank or a fixed dimension differs.
    """
    declared = getattr(adapter, "input_shape", None)
    if declared is None:
        return
    spec = manifest["input_spec"]["methods"]
    for method in artifact["methods"]:
        if method not in spec:
            continue
        want = spec[method]["inputs"][0]["shape"]
        got = declared(method)
        # Dimension 0 is the batch; other dimensions that the graph fixes must match.
        if len(got) != len(want) or any(isinstance(g, int) and g != w for g, w in zip(got[1:], want[1:])):
            raise ArtifactError(f"{_artifact_where(folder, artifact, method)}: input shape {got} does not match the "
                                f"manifest's {want} (does the method point at the wrong file?)")


def _as_frames(clip_or_frames, fps: float | None, source: str = "frames") -> tuple[np.ndarray, float, str]:
    if isinstance(clip_or_frames, Clip):
        return clip_or_frames.frames, float(fps or clip_or_frames.fps), clip_or_frames.source or source
    frames = clip_or_frames
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ClipReadError(source, f"frames must be a uint8 numpy array, got {getattr(frames, 'dtype', type(frames))}")
    if frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[-1] != 3) or 0 in frames.shape:
        raise ClipReadError(source, f"frames must be a non-empty (T, H, W) or (T, H, W, 3) array, got {frames.shape}")
    fps = 30.0 if fps is None else float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise ClipReadError(source, f"fps must be positive, got {fps}")
    return frames, fps, source


class Classifier:
    """An exported model opened with one runtime. Thread-safe: one instance serves many threads.

    Build with `load`. Attributes come from the manifest: ``class_names``, ``frames`` (T),
    ``spec`` (`PreprocessSpec`), ``aggregation``, ``uncertain_threshold``; and from the choice
    made: ``runtime``, ``artifact`` (the manifest entry), ``precision``.
    """

    def __init__(self, folder: Path, manifest: dict, artifact: dict, adapter):
        self.folder = Path(folder)
        self.manifest = manifest
        self.artifact = artifact
        self.adapter = adapter
        self.runtime: str = adapter.name
        self.precision: str = artifact["precision"]
        self.class_names: list[str] = [c["name"] for c in manifest["classes"]]
        self.frames: int = int(manifest["frames"])
        # Frames between a window's frames (ModelConfig.frame_stride); manifests before it had 1.
        self.frame_stride: int = int(manifest.get("frame_stride", 1))
        #: Frames of the clip one window covers.
        self.span: int = (self.frames - 1) * self.frame_stride + 1
        self.aggregation: str = manifest["aggregation"]
        #: The methods the model declares; with the streaming pair each frame is embedded once.
        # (A validated manifest has both; a hand-built one, as in the golden-vector writer, may
        # omit them and means the per-frame model with the pixel clip as its only input.)
        self.methods: tuple[str, ...] = tuple(manifest.get("methods", METHODS))
        self.per_frame: bool = all(m in self.methods for m in STREAMING_METHODS)
        #: ``forward`` inputs computed on the device (input spec entries with ``derive``).
        forward_spec = manifest.get("input_spec", {}).get("methods", {}).get("forward", {})
        self.derived_inputs: list[dict] = [i for i in forward_spec.get("inputs", []) if "derive" in i]
        #: Every derived input is pairwise (entry t from frames t, t + 1 of the window): a stream
        #: computes one frame pair per new frame and keeps the rest (`StreamingClassifier`).
        self.derived_pairwise: bool = bool(self.derived_inputs) and all(
            is_pairwise(i["derive"]) for i in self.derived_inputs)
        self.uncertain_threshold = float(manifest["uncertain_threshold"])
        #: Evidential fusion of key clips (models trained with the evidential loss), else None.
        self.fusion: dict | None = manifest.get("fusion")
        self.spec = PreprocessSpec.from_dict(manifest["preprocessing"])
        # Runtimes that are not re-entrant (ExecuTorch methods, LiteRT interpreters) get one lock.
        self._lock = contextlib.nullcontext() if adapter.reentrant else threading.Lock()

    # ---- runtime calls -------------------------------------------------------------------
    def _quant(self, method: str, key: str, dtype: str) -> dict:
        m = self.artifact["methods"].get(method, {})
        return m.get(key) or self.artifact.get(key) or _DEFAULT_QUANT[dtype]

    def _cast_input(self, method: str, index: int, x: np.ndarray) -> np.ndarray:
        in_dtype = self.artifact.get("input_dtype", "float32")
        if index == 0 and method in PIXEL_METHODS and in_dtype in ("int8", "uint8"):
            return quantize(x, in_dtype, self._quant(method, "input_quantization", in_dtype))
        if in_dtype == "float16":
            return x.astype(np.float16)
        return np.ascontiguousarray(x, dtype=np.float32)

    def run(self, method: str, *inputs: np.ndarray) -> np.ndarray:
        """Run one exported method on its float32 input arrays (in the manifest's order);
        handles int8/fp16 artifact I/O dtypes.

        Pixel inputs of an artifact declaring ``input_dtype`` ``int8``/``uint8`` are quantized with
        the entry's ``input_quantization`` {scale, zero_point} (default 1/255 and 0 / -128); an
        ``output_dtype`` int8/uint8 output is dequantized with ``output_quantization``.
        """
        if method not in self.methods:
            raise ArtifactError(f"{_artifact_where(self.folder, self.artifact)}: the model declares no method "
                                f"{method!r} (it has {', '.join(self.methods)})")
        xs = [self._cast_input(method, i, x) for i, x in enumerate(inputs)]
        try:
            with self._lock:
                out = self.adapter.run(method, *xs)
        except Exception as exc:  # engine errors (shape, corrupt kernel...) become one line naming the artifact
            raise ArtifactError(f"{_artifact_where(self.folder, self.artifact, method)}: {self.runtime} failed to run "
                                f"it ({_one_line(exc)})") from None
        out_dtype = self.artifact.get("output_dtype", "float32")
        if out_dtype in ("int8", "uint8") and out.dtype == np.dtype(out_dtype):
            return dequantize(out, self._quant(method, "output_quantization", out_dtype))
        return out.astype(np.float32, copy=False)

    def embed(self, x: np.ndarray) -> np.ndarray:
        """Features ``(N, D)`` of preprocessed frames ``(N, C, S, S)``, one ``embed_frame`` call each."""
        return np.concatenate([self.run("embed_frame", x[i : i + 1]) for i in range(len(x))])

    def classify_features(self, features: np.ndarray) -> np.ndarray:
        """Logits ``(K,)`` of one window of features ``(T, D)``."""
        return self.run("classify_window", features[None])[0]

    def window_inputs(self, x: np.ndarray, source: str = "window") -> list[np.ndarray]:
        """Every ``forward`` input for preprocessed frames ``(T, C, S, S)``, batch 1: the pixels,
        then each derived input computed from them (`echoweave.edge.derived_inputs`)."""
        return [x[None]] + [derive(spec["derive"], x, source)[None] for spec in self.derived_inputs]

    def forward_window(self, x: np.ndarray) -> np.ndarray:
        """Logits ``(K,)`` of the window model on preprocessed frames ``(T, C, S, S)``."""
        return self.run("forward", *self.window_inputs(x))[0]

    # ---- preprocessing -------------------------------------------------------------------
    def preprocess(self, frames: np.ndarray, sector: "Sector | str | None" = "auto", source: str = "frames") -> np.ndarray:
        """uint8 frames ``(T, H, W[, 3])`` -> float32 model input ``(T, C, S, S)``.

        Args:
            frames: the frames.
            sector: ``"auto"`` estimates the fan from these frames (clip-level, as in training);
                a `Sector` applies a known one; None skips masking. Ignored when the manifest's
                spec has ``sector_mask: false``.
            source: used in error messages.
        """
        return self.preprocess_with_sector(frames, sector, source)[0]

    def preprocess_with_sector(self, frames: np.ndarray, sector: "Sector | str | None" = "auto",
                               source: str = "frames", chunk: int = 0) -> tuple[np.ndarray, str]:
        """`preprocess`, also returning the sector method used (see `Prediction.sector_method`).

        ``chunk`` > 0 with ``sector="auto"``: the fan is estimated and applied separately on
        consecutive runs of ``chunk`` frames (a remainder under half a chunk joins the run before
        it). A recording of minutes needs this: while the probe moves between views the whole
        recording's temporal change reaches beyond the fan any clip-length run shows (a scan's
        mask grew from 101 to 111 rows), so one mask crops every frame differently from training.
        """
        if chunk > 0 and isinstance(sector, str) and len(frames) > chunk:
            bounds = list(range(0, len(frames), chunk)) + [len(frames)]
            if len(bounds) > 2 and bounds[-1] - bounds[-2] < chunk / 2:
                del bounds[-2]
            parts = [self.preprocess_with_sector(frames[a:b], sector, source) for a, b in zip(bounds, bounds[1:])]
            methods = sorted({m for _, m in parts})
            return np.concatenate([x for x, _ in parts]), "+".join(methods)
        if self.spec.grayscale and frames.ndim == 4:
            frames = rgb_to_gray(frames)  # (T, H, W)
        method = "none"
        if self.spec.sector_mask and sector is not None:
            if isinstance(sector, str):
                if sector != "auto":
                    raise ValueError(f"sector must be 'auto', None or a Sector, got {sector!r}")
                sector = estimate_sector(frames)  # one frame (a still): the single-frame brightness policy
                method = sector.method
            else:
                method = "given"
            frames = apply_sector(frames, sector)
        return preprocess_frames(frames, self.spec, source), method

    # ---- predictions ---------------------------------------------------------------------
    def make_prediction(self, probs: np.ndarray, frame_index: int, time_s: float, latency_ms: float,
                        windows: int = 1) -> Prediction:
        """Wrap a probability vector into a `Prediction` (argmax, confidence, uncertain flag)."""
        k = int(np.argmax(probs))
        conf = float(probs[k])
        return Prediction(self.class_names[k], k, probs, conf, conf < self.uncertain_threshold, int(frame_index),
                          float(time_s), float(latency_ms), self.runtime, windows)

    def window_starts(self, num_frames: int, hop: int) -> list[int]:
        """First frame of each sliding window (a short clip has one window, padded).

        A window takes T frames ``frame_stride`` apart, so it covers `span` frames of the clip.
        """
        if hop < 1:
            raise ValueError(f"hop must be >= 1, got {hop}")
        return list(range(0, max(num_frames - self.span, 0) + 1, hop))

    def predict_windows(self, clip_or_frames, hop: int = 1, fps: float | None = None,
                        sector: "Sector | str | None" = "auto", via: str = "features",
                        starts=None, sector_chunk_s: float = 0.0) -> list[Prediction]:
        """Per-window predictions over a clip (sliding windows of T frames every ``hop`` frames).

        Args:
            clip_or_frames: a `Clip` or uint8 frames ``(T, H, W[, 3])``.
            hop: frames between window starts.
            fps: frame rate for times (default: the clip's, or 30 for bare frames).
            sector: see `preprocess`.
            via: ``"features"`` (embed each frame once, then ``classify_window``; the fast path) or
                ``"forward"`` (the exported window model on every window; the reference). A model
                without the streaming split always runs ``"forward"`` (`Prediction.via` says so).
            starts: first frames of the windows to run (default: every ``hop``-th); an
                evidential model's key clips.
            sector_chunk_s: with ``sector="auto"``, estimate the fan on runs of this many seconds
                instead of once over the clip (0); for long recordings (`preprocess_with_sector`).

        Returns:
            One `Prediction` per window; ``frame_index``/``time_s`` are those of its last frame.
            ``latency_ms`` is the clip's total time divided over the windows.
        """
        frames, fps, source = _as_frames(clip_or_frames, fps)
        t0 = time.perf_counter()
        if sector_chunk_s < 0:
            raise ValueError(f"sector_chunk_s must be >= 0, got {sector_chunk_s}")
        chunk = int(round(sector_chunk_s * fps))
        x, sector_method = self.preprocess_with_sector(frames, sector, source, chunk)  # (N, C, S, S)
        n = len(x)
        warnings = []
        for spec in self.derived_inputs:
            # Padding would hand the model a motion input computed between copies of one frame.
            if n < min_frames(spec["derive"]):
                raise DerivedInputError(f"{source}: {n} frame{'s' if n != 1 else ''}; this model's "
                                        f"{spec['name']!r} input ({spec['derive']['kind']}) is computed between "
                                        f"frames and needs at least {min_frames(spec['derive'])}")
        if n < self.span:  # repeat the last frame (the samplers' short="repeat" policy)
            x = np.concatenate([x, np.repeat(x[-1:], self.span - n, axis=0)])
            warnings.append(f"{n} frame{'s' if n != 1 else ''}, shorter than the model's window of {self.span}: "
                            "padded by repeating the last frame")
        starts = self.window_starts(n, hop) if starts is None else [int(v) for v in starts]
        step = self.frame_stride
        if via not in ("features", "forward"):
            raise ValueError(f"via must be 'features' or 'forward', got {via!r}")
        via = via if self.per_frame else "forward"
        if via == "features":
            feats = self.embed(x)  # (N', D)
            logits = [self.classify_features(feats[s : s + self.span : step]) for s in starts]
        else:
            logits = [self.forward_window(x[s : s + self.span : step]) for s in starts]
        per_window = (time.perf_counter() - t0) * 1000.0 / len(starts)
        out = []
        for s, z in zip(starts, logits):
            last = min(s + self.span, n) - 1
            pred = self.make_prediction(softmax(z), last, last / fps, per_window)
            pred.sector_method, pred.warnings, pred.via = sector_method, list(warnings), via
            pred.logits = np.asarray(z, dtype=np.float64)
            if self.fusion is not None:
                pred.uncertainty = self.evidential(pred.logits[None])[1]
            out.append(pred)
        return out

    def predict(self, clip_or_frames, hop: int = 1, fps: float | None = None,
                sector: "Sector | str | None" = "auto", via: str = "features") -> Prediction:
        """One prediction for a whole clip: the mean of its window probabilities.

        Arguments as in `predict_windows`. The result's ``frame_index`` is the clip's last
        frame, ``windows`` the number averaged and ``latency_ms`` the total time.
        """
        t0 = time.perf_counter()
        if self.fusion is not None:
            return self._predict_evidential(clip_or_frames, fps, sector, via, t0)
        windows = self.predict_windows(clip_or_frames, hop, fps, sector, via)
        return self.combine_windows(windows, (time.perf_counter() - t0) * 1000.0)

    def evidential(self, logits: np.ndarray) -> tuple[np.ndarray, float]:
        """``(probabilities, uncertainty)`` of the evidential fusion of ``logits (N, K)``
        (`echoweave.edge.evidential.fuse`; uncertainty scaled to (0, 1], see `Prediction`)."""
        prior = float(self.fusion.get("prior", DEFAULT_PRIOR))
        fused = fuse(logits, prior)
        return fused.probabilities, min(1.0, fused.uncertainty * len(logits) * prior)

    def _predict_evidential(self, clip_or_frames, fps, sector, via, t0) -> Prediction:
        """`predict` of an evidential model: only its key clips, spread evenly over the clip, fused."""
        frames, fps, _ = _as_frames(clip_or_frames, fps)
        starts = key_clip_starts(len(frames), self.span, int(self.fusion.get("key_clips", DEFAULT_KEY_CLIPS)))
        windows = self.predict_windows(clip_or_frames, 1, fps, sector, via, starts=starts)
        return self.combine_windows(windows, (time.perf_counter() - t0) * 1000.0)

    def combine_windows(self, windows: list[Prediction], latency_ms: float) -> Prediction:
        """The clip prediction from its window predictions: mean probabilities, the last window's
        frame and time, and the windows' sector method and warnings.

        An evidential model (manifest ``fusion``) fuses the evidence of ``key_clips`` windows
        spread evenly over the list instead (for sliding windows at hop 1 exactly the key clips
        of `echoweave.edge.evidential.key_clip_starts`) and reports their uncertainty.
        """
        last = windows[-1]
        uncertainty = None
        if self.fusion is not None:
            count = int(self.fusion.get("key_clips", DEFAULT_KEY_CLIPS))
            keys = np.linspace(0, len(windows) - 1, num=count).round().astype(int)
            probs, uncertainty = self.evidential(np.stack([windows[i].logits for i in keys]))
            used = len(keys)
        else:
            probs, used = np.mean([w.probabilities for w in windows], axis=0), len(windows)
        pred = self.make_prediction(probs, last.frame_index, last.time_s, latency_ms, windows=used)
        pred.sector_method, pred.warnings, pred.via = last.sector_method, list(last.warnings), last.via
        pred.uncertainty = uncertainty
        return pred

    def stream(self, **kwargs) -> "StreamingClassifier":
        """A new `StreamingClassifier` over this model (keyword arguments go to its constructor)."""
        return StreamingClassifier(self, **kwargs)

    def describe(self) -> dict:
        """Facts for reports: model id, artifact, runtime and its version, precision."""
        return {"model_id": self.manifest["model_id"], "artifact": self.artifact["id"], "runtime": self.runtime,
                "runtime_version": getattr(self.adapter, "version", ""), "precision": self.precision,
                "frames": self.frames, "frame_stride": self.frame_stride, "aggregation": self.aggregation,
                "methods": list(self.methods), "streaming": "per_frame" if self.per_frame else "window_recompute"}

    def close(self) -> None:
        """Release the runtime."""
        self.adapter.close()

    def __repr__(self) -> str:
        return (f"Classifier({self.manifest['model_id']!r}, runtime={self.runtime!r}, "
                f"artifact={self.artifact['id']!r}, classes={len(self.class_names)}, T={self.frames})")


class StreamInputError(ClipReadError):
    """A frame pushed to a stream is not a uint8 ``(H, W)`` / ``(H, W, 3)`` image. The stream is unchanged."""

    def __init__(self, problem: str):
        super().__init__("stream", problem)


def _check_stream_frame(frame) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise StreamInputError(f"a frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        nan = " (it contains NaN)" if frame.dtype.kind == "f" and np.isnan(frame).any() else ""
        raise StreamInputError(f"a frame must be uint8 pixels, got {frame.dtype}{nan}")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[-1] != 3):
        raise StreamInputError(f"a frame must be (H, W) or (H, W, 3), got shape {frame.shape}")
    if 0 in frame.shape:
        raise StreamInputError(f"a frame must not be empty, got shape {frame.shape}")
    return frame


class StreamingClassifier:
    """Classify a live stream frame by frame with one backbone pass per frame.

    A model without the streaming split (window-only, e.g. a 3-D CNN) streams too: the ring
    buffer then holds preprocessed frames and every prediction recomputes the exported
    ``forward`` on the window (``Prediction.via == "forward"``), costing a whole window per frame.
    Its derived inputs, when pairwise (optical flow, frame differences), are kept per frame in a
    second ring buffer: each new frame costs one frame pair (its flow against the frame ``stride``
    before it), not the window's T - 1; the numbers are those `Classifier.window_inputs` computes.

    Each stream owns its ring buffer and sector state; many streams may share one `Classifier`
    from different threads. See the module docstring for the sector policy.

    Args:
        classifier: the opened model.
        hop: emit a prediction on every ``hop``-th frame once the buffer holds T features.
        window: T; must equal the model's window (the exported head has a fixed T). None = T.
        sector: ``"auto"``, None, a `Sector`, or an ``(H, W)`` bool mask from the app.
        refresh: re-estimate an ``"auto"`` sector when the image changes.
        sector_frames: frames used to estimate the sector.
        change_threshold: mean absolute difference (grey levels) of the static region that
            triggers a refresh.
        fps: frame rate used for ``time_s`` when `push` is given no time.
    """

    def __init__(self, classifier: Classifier, hop: int = 1, window: int | None = None,
                 sector: "Sector | np.ndarray | str | None" = "auto", refresh: bool = True,
                 sector_frames: int = 16, change_threshold: float = 10.0, fps: float = 30.0):
        if hop < 1:
            raise ValueError(f"hop must be >= 1, got {hop}")
        if window is not None and window != classifier.frames:
            raise ValueError(f"window={window} differs from the model's T={classifier.frames} "
                             "(the exported classify_window takes exactly T features)")
        if sector_frames < 2:
            raise ValueError(f"sector_frames must be >= 2 (motion needs two frames), got {sector_frames}")
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < float("inf"):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        self.classifier = classifier
        self.hop, self.window, self.fps = int(hop), classifier.frames, float(fps)
        # The ring buffer holds every frame a window spans; the head gets every stride-th of them.
        self.span, self.stride = classifier.span, classifier.frame_stride
        self.refresh, self.sector_frames, self.change_threshold = refresh, int(sector_frames), float(change_threshold)
        self.auto = isinstance(sector, str)
        if self.auto and sector != "auto":
            raise ValueError(f"sector must be 'auto', None, a Sector or a bool mask, got {sector!r}")
        if isinstance(sector, np.ndarray):
            sector = _sector_from_mask(sector)
        self._given = None if self.auto else sector
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget all frames (buffer, sector estimate, counters); the next frame starts a new stream."""
        self._features: deque = deque(maxlen=self.span)  # (D,) per frame, or (C, S, S) for window-only models
        # Window-only models with pairwise derived inputs: per frame, its pair with the frame
        # `stride` before it (one array per derived input), None while that frame is not buffered.
        self._pairs: deque = deque(maxlen=self.span)
        self._raw: deque = deque(maxlen=self.span)  # grayscale frames behind those features
        # Evidential models: the logits of recent windows, fused over key clips one span apart.
        fusion = self.classifier.fusion or {}
        self._recent_logits: deque = deque(maxlen=int(fusion.get("key_clips", DEFAULT_KEY_CLIPS)) * self.span)
        self._pending: list[np.ndarray] = []  # frames collected for the next sector estimate
        self._sector: Sector | None = self._given
        self._reference: np.ndarray | None = None  # static-region mean on the check grid
        self._shape: tuple[int, int] | None = None
        self.frames_seen = 0
        self.sector_updates = 0

    @property
    def sector(self) -> Sector | None:
        """The sector currently applied (None = whole image)."""
        return self._sector

    @property
    def sector_method(self) -> str:
        """How the sector now applied was found (`Prediction.sector_method`); ``whole_image`` while
        an ``"auto"`` stream still collects frames for its first estimate."""
        if not self.classifier.spec.sector_mask or (not self.auto and self._sector is None):
            return "none"
        if not self.auto:
            return "given"
        return self._sector.method if self._sector is not None else "whole_image"

    def _embed(self, gray: np.ndarray, sector: Sector | None) -> np.ndarray:
        """What the ring buffer keeps of one frame: its feature ``(D,)`` with the streaming split,
        else the preprocessed frame ``(C, S, S)``."""
        x = self.classifier.preprocess(gray[None], sector)  # (1, C, S, S)
        return self.classifier.run("embed_frame", x)[0] if self.classifier.per_frame else x[0]

    @property
    def _incremental(self) -> bool:
        return not self.classifier.per_frame and self.classifier.derived_pairwise

    def _pair(self, i: int) -> list[np.ndarray] | None:
        """Derived inputs of buffered frame ``i`` paired with frame ``i - stride`` (None if absent)."""
        if i < self.stride:
            return None
        two = np.stack([self._features[i - self.stride], self._features[i]])  # (2, C, S, S)
        return [derive(spec["derive"], two, "stream")[0] for spec in self.classifier.derived_inputs]

    def _static_change(self, gray: np.ndarray) -> float:
        if self._reference is None or self._sector is None:
            return 0.0
        grid = 4 * _estimate_step(gray.shape)
        static = ~self._sector.mask[::grid, ::grid]
        if not static.any():
            return 0.0
        return float(np.abs(gray[::grid, ::grid][static].astype(np.float32) - self._reference).mean())

    def _update_sector(self, gray: np.ndarray) -> bool:
        """Advance the "auto" sector state with one frame; True if the sector changed."""
        # Frames wait for the estimate at estimate size (a strided copy, at most MAX_ESTIMATE_SIDE
        # on the longer side): 16 of them cost little whatever the camera's resolution.
        step = _estimate_step(gray.shape)
        small = gray[::step, ::step].copy() if step > 1 else gray
        if self._sector is None or self._pending or not self._sector.from_motion:
            self._pending.append(small)
        elif self.refresh and self._static_change(gray) > self.change_threshold:
            self._pending = [small]  # the picture changed: collect frames for a new estimate
        if len(self._pending) < self.sector_frames:
            return False
        stack = np.stack(self._pending)  # (N, H / step, W / step)
        self._pending = []
        sector = estimate_sector(stack, max_side=0)
        if step > 1:
            mask = upscale_mask(sector.mask, step, gray.shape)
            sector = Sector(mask, _sector_from_mask(mask).bbox, sector.method)
        static = ~sector.mask[:: 4 * step, :: 4 * step]
        self._reference = stack[:, ::4, ::4].mean(0, dtype=np.float32)[static]
        self._sector = sector
        self.sector_updates += 1
        return True

    def push(self, frame: np.ndarray, time_s: float | None = None) -> Prediction | None:
        """Add one frame; returns a window `Prediction` on every ``hop``-th full window, else None.

        Args:
            frame: uint8 ``(H, W)`` grayscale or ``(H, W, 3)`` RGB (copied; the caller may reuse it).
            time_s: the frame's time; default ``frame index / fps``.

        Raises:
            StreamInputError: wrong type, dtype (float, NaN), shape or an empty frame; the stream's
                state is left exactly as it was.
        """
        _check_stream_frame(frame)
        if time_s is not None and (isinstance(time_s, (bool, np.bool_)) or not isinstance(time_s, (int, float, np.number))
                                   or not np.isfinite(time_s)):
            raise StreamInputError(f"time_s must be finite (a number of seconds), got {time_s!r}")
        t0 = time.perf_counter()
        gray = rgb_to_gray(frame) if frame.ndim == 3 else frame.copy()  # (H, W)
        with self._lock:
            if self._shape is not None and gray.shape != self._shape:
                # New geometry (depth/zoom/probe change): old frames and masks no longer apply.
                self._features.clear()
                self._raw.clear()
                self._pairs.clear()
                self._recent_logits.clear()
                self._pending, self._reference = [], None
                if self.auto or (self._sector is not None and self._sector.mask.shape != gray.shape):
                    self._sector = None
            if not self.auto and self._sector is not None and self._sector.mask.shape != gray.shape:
                raise StreamInputError(f"frame {gray.shape} does not match the given sector mask "
                                       f"{self._sector.mask.shape}")
            self._shape = gray.shape
            if self.auto and self.classifier.spec.sector_mask and self._update_sector(gray):
                # Re-embed the buffered frames so the whole window shares one mask.
                self._features = deque((self._embed(g, self._sector) for g in self._raw), maxlen=self.span)
                self._pairs = deque(maxlen=self.span)
                for i in range(len(self._features)):
                    self._pairs.append(self._pair(i))
            self._features.append(self._embed(gray, self._sector))
            self._raw.append(gray)
            if self._incremental:
                self._pairs.append(self._pair(len(self._features) - 1))
            index = self.frames_seen
            self.frames_seen += 1
            if len(self._features) < self.span or (index + 1 - self.span) % self.hop:
                return None
            window = np.stack(list(self._features)[:: self.stride])  # T entries, oldest first
            if self.classifier.per_frame:
                logits = self.classifier.classify_features(window)  # (K,) from (T, D)
            elif self._incremental:
                # pair j of the window = buffered pair of its frame j + 1 (frames j*k, (j+1)*k)
                pairs = list(self._pairs)[self.stride :: self.stride]  # T - 1 entries
                derived = [np.stack([p[d] for p in pairs])[None] for d in range(len(self.classifier.derived_inputs))]
                logits = self.classifier.run("forward", window[None], *derived)[0]
            else:
                logits = self.classifier.forward_window(window)  # (K,) from (T, C, S, S)
            method = self.sector_method
        when = index / self.fps if time_s is None else float(time_s)
        pred = self.classifier.make_prediction(softmax(logits), index, when, (time.perf_counter() - t0) * 1000.0)
        pred.sector_method, pred.via = method, "features" if self.classifier.per_frame else "forward"
        pred.logits = np.asarray(logits, dtype=np.float64)
        if self.classifier.fusion is not None:
            pred.uncertainty = self._fused_uncertainty(pred.logits)
        return pred

    def _fused_uncertainty(self, logits: np.ndarray) -> float:
        """Evidential uncertainty of this window fused with earlier ones: up to ``key_clips``
        windows (this one included) ending one span apart, the stream's sliding key clips."""
        with self._lock:
            self._recent_logits.append(logits)
            recent = list(self._recent_logits)[::-1]
        every = max(1, -(-self.span // self.hop))  # predictions come every hop frames
        key_clips = int(self.classifier.fusion.get("key_clips", DEFAULT_KEY_CLIPS))
        return self.classifier.evidential(np.stack(recent[::every][:key_clips]))[1]


def _estimate_step(shape: tuple[int, ...]) -> int:
    """Stride that brings a frame to at most `MAX_ESTIMATE_SIDE` pixels on its longer side."""
    return -(-max(shape[:2]) // MAX_ESTIMATE_SIDE)


def _sector_from_mask(mask: np.ndarray) -> Sector:
    if mask.dtype != bool or mask.ndim != 2 or not mask.any():
        raise ValueError(f"a sector mask must be a non-empty (H, W) bool array, got {mask.dtype} {mask.shape}")
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return Sector(mask, (int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1), "given")
