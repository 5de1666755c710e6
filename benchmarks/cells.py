"""What one benchmark cell is and how it is readied, shared by the harness and the memory probe.

`echoweave.benchmarks.harness` times cells in this process; `echoweave.benchmarks.memprobe` sets
up one cell in a fresh process to measure its peak RSS. Both need `BenchConfig`, `Cell` and
`setup_cell`, so they live here, below both (the harness re-exports them).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from echoweave.benchmarks.gemm import DEFAULT_SHAPE
from echoweave.benchmarks.threads import apply_threads
from echoweave.edge.errors import EchoweaveError
from echoweave.edge.runtime.base import RUNTIMES

MODES = ("window", "stream")
#: The parts of one streamed frame `stream_split` times, in the order `StreamingClassifier.push` runs them.
SPLIT_PARTS = ("decode_convert", "sector", "resize", "model", "head")


class BenchError(EchoweaveError):
    """The benchmark cannot run as asked (no artifact, no input recording, bad option)."""


@dataclass
class BenchConfig:
    """What to benchmark.

    Attributes:
        artifact_dir: ``artifacts/<model_id>`` with manifest.json.
        runtimes: runtimes to time (None = every installed runtime with an artifact).
        precisions: precisions to time (None = all in the manifest).
        threads: thread counts; one cell per count.
        modes: ``window`` and/or ``stream``.
        fps: frame rate of the real-time budget.
        seconds: timed seconds per cell.
        warmup: untimed calls after the first inference.
        clip: a DICOM/video/frame-folder recording for stream input (default: a phantom recording).
        eager: time the eager PyTorch fp32 baseline (needs torch).
        gemm: measure each runtime's GEMM ceiling (needs torch + converters to build GEMM models).
        gemm_shape: ``(m, k, n)`` of the GEMM.
        gemm_seconds: timed seconds per GEMM measurement.
        memory: run the per-cell peak-RSS subprocess probe.
        chunk_seconds: length of one interleaving slice.
        load_repeats: loads per cell (median reported).
        phantom_size: ``(H, W)`` of the phantom recording's frames.
        phantom_frames: frames in the phantom recording (looped).
        clock_ghz: override the clock used for the theoretical peak.
        fma_units: FMA units per core for the theoretical peak.
        cache_dir: where GEMM models are cached.
        progress: show a progress bar.
    """

    artifact_dir: str
    runtimes: list[str] | None = None
    precisions: list[str] | None = None
    threads: list[int] = field(default_factory=lambda: [1, 2])
    modes: list[str] = field(default_factory=lambda: list(MODES))
    fps: float = 30.0
    seconds: float = 20.0
    warmup: int = 5
    clip: str | None = None
    eager: bool = True
    gemm: bool = True
    gemm_shape: tuple[int, int, int] = DEFAULT_SHAPE
    gemm_seconds: float = 1.0
    memory: bool = True
    chunk_seconds: float = 0.5
    load_repeats: int = 3
    phantom_size: tuple[int, int] = (240, 320)
    phantom_frames: int = 60
    clock_ghz: float | None = None
    fma_units: int = 2
    cache_dir: str = str(Path.home() / ".cache" / "echoweave" / "gemm")
    progress: bool = True

    def check(self) -> None:
        """Raise `BenchError` on impossible options."""
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise BenchError(f"--mode must be a subset of {MODES}, got {self.modes}")
        if not self.threads or any(t < 1 for t in self.threads):
            raise BenchError(f"--threads must be positive integers, got {self.threads}")
        if self.fps <= 0 or self.seconds <= 0:
            raise BenchError(f"--fps and --seconds must be positive (got {self.fps}, {self.seconds})")
        unknown = [r for r in self.runtimes or [] if r not in RUNTIMES]
        if unknown:
            raise BenchError(f"unknown runtime(s) {unknown}; known: {', '.join(RUNTIMES)}")


def proc_status_mb(key: str = "VmHWM") -> float | None:
    """A memory line of /proc/self/status in MB (``VmHWM`` peak, ``VmRSS`` current); None without /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    """Current resident set size of this process in MB (Linux /proc; None elsewhere)."""
    return proc_status_mb("VmRSS")


@dataclass
class Cell:
    """One (runtime, precision, threads, mode) measurement in progress."""

    runtime: str
    precision: str
    threads: int
    mode: str
    artifact: dict | None = None
    clf: object = None
    call: object = None
    stream: object = None
    split: dict | None = None
    load_ms: list[float] = field(default_factory=list)
    first_ms: float | None = None
    warmup: int = 0
    samples: list[float] = field(default_factory=list)
    rss_load_delta_mb: float | None = None
    memory: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.runtime}-{self.precision}-t{self.threads}-{self.mode}"


def _open(cell: Cell, folder: Path, manifest: dict, eager_model=None):
    import echoweave.edge as ew

    if cell.runtime == "eager":
        from echoweave.benchmarks.eager import open_eager

        return open_eager(folder, manifest, eager_model)
    return ew.load(folder, runtime=cell.runtime, precision=cell.precision, threads=cell.threads)


def setup_cell(cell: Cell, folder: Path, manifest: dict, frames: np.ndarray, cfg: BenchConfig, eager_model=None) -> None:
    """Load (timed, repeated), first inference, warm-up; leaves ``cell.call`` ready to time."""
    apply_threads(cell.runtime, cell.threads)
    before = rss_mb()
    clf = None
    for _ in range(max(1, cfg.load_repeats)):
        if clf is not None:
            clf.close()
        t0 = time.perf_counter_ns()
        clf = _open(cell, folder, manifest, eager_model)
        cell.load_ms.append((time.perf_counter_ns() - t0) / 1e6)
    after = rss_mb()
    cell.rss_load_delta_mb = None if before is None or after is None else after - before
    cell.clf = clf
    if cell.mode == "window":
        window = clf.preprocess(frames[: clf.frames])  # (T, C, S, S), preprocessed once
        cell.call = lambda: clf.forward_window(window)
        extra = 0
    else:
        stream = cell.stream = clf.stream(fps=cfg.fps)
        counter = iter(range(1 << 62))
        cell.call = lambda: stream.push(frames[next(counter) % len(frames)])
        extra = stream.sector_frames + clf.span  # sector estimate + full ring buffer happen in warm-up
        if not clf.per_frame:
            cell.notes.append("no streaming split: each streamed frame recomputes forward on the whole window")
    kinds = sorted({spec["derive"]["kind"] for spec in getattr(clf, "derived_inputs", [])})
    # Computed on the CPU before each forward (echoweave.edge.derived_inputs): part of the cost.
    if kinds and cell.mode == "window":
        cell.notes.append(f"each window includes computing the derived inputs of the window ({', '.join(kinds)})")
    elif kinds and not clf.per_frame:
        cell.notes.append(f"each streamed frame includes computing its derived inputs ({', '.join(kinds)}): "
                          + ("one frame pair per frame, the window's other pairs kept from earlier frames"
                             if clf.derived_pairwise else "the whole window's"))
    t0 = time.perf_counter_ns()
    cell.call()
    cell.first_ms = (time.perf_counter_ns() - t0) / 1e6
    cell.warmup = cfg.warmup + extra
    for _ in range(cell.warmup):
        cell.call()


def stream_split(cell: Cell, frames: np.ndarray, calls: int = 50) -> dict:
    """Where a streamed frame's time goes: per-frame medians (ms) of each part of
    `StreamingClassifier.push`, timed one by one on ``calls`` frames of the recording with the
    cell's own stream state (its sector estimate, after the timed run).

    Parts: ``decode_convert`` (the frame is decoded before the run; this is push's grey
    conversion or copy), ``sector`` (mask + crop to the fan), ``resize`` (float scaling,
    antialiased resize, centre crop: `preprocess_frames`), ``model`` (``embed_frame``; a whole
    ``forward`` for a model without the streaming split), ``head`` (``classify_window`` on T
    features; 0 without the split). ``preprocess`` is the first three together, ``other`` what
    the push median spends beyond the parts (ring buffer, sector refresh check, softmax).

    Returns:
        ``{part: median ms, ..., "preprocess", "other", "frame_shape", "calls", "what"}``.
    """
    from echoweave.edge.image import rgb_to_gray
    from echoweave.edge.preprocess import preprocess_frames
    from echoweave.edge.sector import apply_sector

    clf, stream = cell.clf, cell.stream
    spec, sector = clf.spec, stream.sector
    times: dict[str, list[float]] = {part: [] for part in SPLIT_PARTS}
    features: list[np.ndarray] = []
    window: list[np.ndarray] = []

    def timed(part: str, fn, *args):
        t0 = time.perf_counter_ns()
        out = fn(*args)
        times[part].append((time.perf_counter_ns() - t0) / 1e6)
        return out

    for i in range(calls):
        frame = frames[i % len(frames)]
        gray = timed("decode_convert", lambda f: rgb_to_gray(f) if f.ndim == 3 else f.copy(), frame)
        masked = gray[None]
        if spec.sector_mask and sector is not None:
            masked = timed("sector", apply_sector, masked, sector)
        else:
            times["sector"].append(0.0)
        x = timed("resize", preprocess_frames, masked, spec)  # (1, C, S, S)
        if clf.per_frame:
            features = (features + [timed("model", clf.run, "embed_frame", x)[0]])[-clf.frames:]
            head_in = np.stack(features + [features[-1]] * (clf.frames - len(features)))  # (T, D)
            timed("head", clf.classify_features, head_in)
        else:
            window = (window + [x[0]])[-clf.frames:]
            timed("model", clf.forward_window, np.stack(window + [window[-1]] * (clf.frames - len(window))))
            times["head"].append(0.0)
    split = {part: float(np.median(v)) for part, v in times.items()}
    split["preprocess"] = float(np.median([sum(p) for p in zip(times["decode_convert"], times["sector"],
                                                                times["resize"])]))
    pushed = float(np.median(cell.samples)) if cell.samples else None
    split["other"] = None if pushed is None else max(0.0, pushed - sum(split[p] for p in SPLIT_PARTS))
    split.update(frame_shape=list(frames.shape[1:]), calls=calls,
                 what="per-frame medians (ms) of each part of StreamingClassifier.push, timed separately after "
                      "the interleaved run (echoweave.benchmarks.cells.stream_split)")
    return split
