"""The host benchmark: every (runtime, precision, threads, mode) cell of an artifact folder,
timed through `echoweave.edge` exactly as an app calls it, interleaved, with an eager baseline.

    from echoweave.benchmarks.harness import BenchConfig, run_bench
    perf = run_bench(BenchConfig("artifacts/tfw_r50", threads=[1, 2], seconds=20))

Per cell:

* **load** — `echoweave.edge.load` (manifest read, sha256 check of the files, runtime session)
  repeated ``load_repeats`` (3) times; the median is reported ("cold" within this process: the
  OS file cache is warm after the first load and the runtime module is imported once).
* **first inference** — the first call after the last load; then ``warmup`` untimed calls
  (stream mode adds ``sector_frames + T`` pushes, so the one-off sector estimate and the ring
  buffer fill happen in warm-up; the recorded count says how many).
* **stream split** — after the timed run, each stream cell's frame is taken apart
  (`echoweave.benchmarks.cells.stream_split`): medians of grey conversion, sector mask, resize,
  ``embed_frame`` and ``classify_window`` per frame (``stream_split_ms``; `stream_split_table`).
* **window** mode — one call = ``Classifier.forward_window`` on one preprocessed T-frame window
  (the exported ``forward``; preprocessing excluded, done once).
* **stream** mode — one call = ``StreamingClassifier.push`` of one uint8 frame of the recording,
  end to end: grey conversion, sector mask, resize/crop/scale, ``embed_frame``, ``classify_window``.
* cells run **interleaved** in chunks of ``chunk_seconds`` (A B C A B C ...) until each has spent
  ``seconds`` in timed calls, so load drift on a shared machine hits every cell alike.
* **memory** — a fresh subprocess per cell (`echoweave.benchmarks.memprobe`) loads the artifact
  and runs a few calls; its peak RSS (``ru_maxrss``) and RSS before the load are recorded.
  In-process, ``rss_load_delta_mb`` is the RSS growth of the loads.
* **baseline** — eager PyTorch fp32 cells (`echoweave.benchmarks.eager`) at the same threads and
  modes; each cell's ``speedup_vs_eager`` = eager median / cell median.
* **hardware limit** — MACs per call (`echoweave.benchmarks.macs`) / median latency = achieved
  GMAC/s, as a fraction of the theoretical peak at the cell's thread count
  (`echoweave.benchmarks.hostinfo`) and of the best GEMM rate of the same runtime, precision and
  threads measured in this run (`echoweave.benchmarks.gemm`; measured before and after the cells,
  the better of the two is the ceiling). Stream-mode rates include the
  numpy preprocessing time, so they understate the engine.

Threads are set per cell as `echoweave.benchmarks.threads` describes (per load for ONNX Runtime
and LiteRT, the process-wide pool for eager torch). ExecuTorch's XNNPACK pool is process-wide and
resetting it crashed a full-size run, so ExecuTorch cells run only at the pool's size; the other
thread counts are listed under ``skipped`` with that reason.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from echoweave.benchmarks.cells import (  # noqa: F401  (MODES, BenchError, rss_mb re-exported)
    MODES,
    BenchConfig,
    BenchError,
    SPLIT_PARTS,
    Cell,
    rss_mb,
    setup_cell,
    stream_split,
)
from echoweave.benchmarks.gemm import measure_gemm
from echoweave.benchmarks.hostinfo import host_info, load_average, peak_for_threads
from echoweave.benchmarks.stats import latency_stats, realtime_verdict
from echoweave.benchmarks.threads import THREAD_CONTROL, apply_threads, executorch_skip_reason
from echoweave.edge.atomic import write_json_atomic
from echoweave.edge.manifest import read_manifest
from echoweave.edge.runtime.base import PREFERENCE, RUNTIMES, runtime_available

SAMPLE_DECIMALS = 4


# ---- input ----------------------------------------------------------------------------------
def load_recording(cfg: BenchConfig, manifest: dict) -> tuple[np.ndarray, str]:
    """``(uint8 frames (N, H, W), description)``: the ``--clip`` recording or a phantom one."""
    if cfg.clip:
        from echoweave.edge.readers import read_clip

        clip = read_clip(cfg.clip, gray=True)
        return clip.frames, f"clip {cfg.clip} ({clip.frames.shape[0]} frames {clip.frames.shape[1:]})"
    try:
        from echoweave.train.data.phantom import PhantomConfig, generate_clip, make_patient
    except ImportError as exc:
        raise BenchError("no --clip given and the phantom needs torch/train extras (edge-only install): "
                         "pass --clip PATH to a DICOM cine, video or frame folder") from exc
    h, w = cfg.phantom_size
    pcfg = PhantomConfig(num_patients=1, clips_per_view=1, num_frames=cfg.phantom_frames, height=h, width=w,
                         class_set=tuple(c["name"] for c in manifest["classes"]))
    view = pcfg.class_set[min(1, len(pcfg.class_set) - 1)]
    clip = generate_clip(view, make_patient(0, 0), 0, pcfg)
    frames = clip.frames if clip.frames.ndim == 3 else clip.frames[..., 0]
    return frames, f"phantom {view} ({frames.shape[0]} frames {frames.shape[1:]}, looped)"


# ---- cells ----------------------------------------------------------------------------------
def plan_cells(manifest: dict, cfg: BenchConfig) -> tuple[list[Cell], list[dict]]:
    """Cells to run and combinations skipped (with the reason), in a stable order."""
    cells, skipped = [], []
    wanted = cfg.runtimes or [r for r in PREFERENCE if any(a["format"] == RUNTIMES[r].format
                                                           for a in manifest["artifacts"])]
    for runtime in wanted:
        arts = [a for a in manifest["artifacts"] if a["format"] == RUNTIMES[runtime].format
                and (cfg.precisions is None or a["precision"] in cfg.precisions)]
        if not runtime_available(runtime):
            why = (f"{runtime} cannot predict on {sys.platform}" if RUNTIMES[runtime].platforms
                   else f"{runtime} is not installed (pip install {RUNTIMES[runtime].pip})")
            skipped += [{"runtime": runtime, "precision": a["precision"], "reason": why} for a in arts] or \
                [{"runtime": runtime, "precision": "*", "reason": why}]
            continue
        if not arts:
            skipped.append({"runtime": runtime, "precision": ",".join(cfg.precisions or ["*"]),
                            "reason": f"no {RUNTIMES[runtime].format} artifact of that precision in the manifest"})
        for art in arts:
            for threads in cfg.threads:
                why = executorch_skip_reason(threads) if runtime == "executorch" else None
                if why:
                    skipped.append({"runtime": runtime, "precision": art["precision"], "threads": threads,
                                    "reason": why})
                    continue
                for mode in cfg.modes:
                    cells.append(Cell(runtime, art["precision"], threads, mode, art))
    return cells, skipped


def run_interleaved(cells: list[Cell], cfg: BenchConfig, min_calls: int = 3) -> None:
    """Time every cell in round-robin slices until each has ``cfg.seconds`` of timed calls."""
    from tqdm import tqdm

    spent = {c.id: 0.0 for c in cells}
    active = list(cells)
    bar = tqdm(total=round(cfg.seconds * len(cells), 1), unit="s", desc="bench", disable=not cfg.progress,
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}] {postfix}")
    while active:
        for cell in list(active):
            bar.set_postfix_str(cell.id)
            apply_threads(cell.runtime, cell.threads)
            slice_end = time.perf_counter() + cfg.chunk_seconds
            done_before = spent[cell.id]
            while True:
                t0 = time.perf_counter_ns()
                cell.call()
                ms = (time.perf_counter_ns() - t0) / 1e6
                cell.samples.append(ms)
                spent[cell.id] += ms / 1000.0
                if spent[cell.id] >= cfg.seconds or time.perf_counter() >= slice_end:
                    break
            bar.update(min(spent[cell.id], cfg.seconds) - min(done_before, cfg.seconds))
            if spent[cell.id] >= cfg.seconds and len(cell.samples) >= min_calls:
                active.remove(cell)
    bar.close()


def probe_memory(cell: Cell, folder: Path, frames_npy: str, calls: int = 5) -> dict | None:
    """Peak RSS of a fresh process that loads the cell's artifact and makes ``calls`` calls.

    The recording is handed over as a ``.npy`` file so the probe imports nothing but the runtime
    (no torch for ONNX Runtime / LiteRT cells)."""
    req = {"folder": str(folder), "runtime": cell.runtime, "precision": cell.precision, "threads": cell.threads,
           "mode": cell.mode, "calls": calls, "frames_npy": frames_npy}
    try:
        done = subprocess.run([sys.executable, "-m", "echoweave.benchmarks.memprobe", json.dumps(req)],
                              capture_output=True, text=True, timeout=600)
        line = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
        if done.returncode != 0 or not line:
            return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
        return json.loads(line[-1])
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


# ---- results --------------------------------------------------------------------------------
def artifact_bytes(artifact: dict | None) -> int | None:
    """Bytes of the files an app ships for the artifact's methods (not e.g. a .bpte test bundle)."""
    if not artifact or not artifact.get("files"):
        return None
    used = {m["file"] for m in artifact["methods"].values()}
    sizes = [f.get("bytes") for f in artifact["files"] if f["path"] in used]
    return int(sum(sizes)) if sizes and None not in sizes else None


def delegation_of(artifact: dict | None) -> dict | None:
    """Share of graph nodes inside the delegate per method, from the manifest (ExecuTorch)."""
    deleg = ((artifact or {}).get("extra") or {}).get("delegation")
    if not deleg:
        return None
    return {"source": "manifest artifacts[].extra.delegation (counted at export)",
            "delegated_share": {m: d.get("delegated_share") for m, d in deleg.items()},
            "ops_outside": {m: d.get("ops_outside") for m, d in deleg.items()}}


def cell_result(cell: Cell, frames_t: int, cfg: BenchConfig, peak: dict, macs: dict | None,
                gemm: dict[tuple, dict]) -> dict:
    """The perf.json entry of one finished cell (speed-up vs eager is filled in later)."""
    stats = latency_stats(cell.samples)
    macs_call = None if macs is None else int(macs["forward" if cell.mode == "window" else "per_frame"])
    achieved = None if macs_call is None else macs_call / (stats["median"] * 1e6)
    peak_t = peak_for_threads(peak, cell.threads, cell.precision)
    g = gemm.get((cell.runtime, cell.precision, cell.threads))
    mem = cell.memory or {}
    notes = list(cell.notes)
    if mem.get("error"):
        notes.append(f"memory probe failed: {mem['error']}")
    return {
        "id": cell.id, "runtime": cell.runtime,
        "runtime_version": str(getattr(cell.clf.adapter, "version", "")), "artifact": (cell.artifact or {}).get(
            "id", "eager_pytorch_fp32"),
        "precision": cell.precision, "threads": cell.threads, "threads_control": THREAD_CONTROL.get(cell.runtime, ""),
        "mode": cell.mode,
        "load_ms": {"median": float(np.median(cell.load_ms)), "samples": [round(x, 3) for x in cell.load_ms],
                    "what": "echoweave.edge.load: manifest + sha256 check + runtime session"},
        "first_inference_ms": cell.first_ms, "warmup": cell.warmup, "latency_ms": stats,
        "samples_ms": [round(x, SAMPLE_DECIMALS) for x in cell.samples],
        "peak_rss_mb": mem.get("peak_rss_mb"), "rss_load_delta_mb": cell.rss_load_delta_mb,
        "memory_probe": mem or None,
        "artifact_bytes": artifact_bytes(cell.artifact), "delegation": delegation_of(cell.artifact),
        "realtime": realtime_verdict(stats, cell.mode, cfg.fps, frames_t), "speedup_vs_eager": None,
        "macs_per_call": macs_call, "achieved_gmacs": achieved,
        "fraction_of_peak": achieved / peak_t if achieved and peak_t else None,
        "fraction_of_gemm": achieved / g["gmacs"] if achieved and g else None,
        "stream_split_ms": cell.split,
        "notes": notes,
    }


def stream_split_table(perf: dict) -> str:
    """The stream cells' per-frame split as a text table (ms, medians); empty without stream cells."""
    cells = [c for c in perf["cells"] if c.get("stream_split_ms")]
    if not cells:
        return ""
    cols = (*SPLIT_PARTS, "preprocess", "other")
    lines = [f"{'stream cell: per-frame split, ms':<32} " + " ".join(f"{c:>14}" for c in cols) + f" {'push median':>11}"]
    for c in cells:
        s = c["stream_split_ms"]
        lines.append(f"{c['id']:<32} " + " ".join(f"{s[k]:14.3f}" if s.get(k) is not None else f"{'-':>14}"
                                                   for k in cols) + f" {c['latency_ms']['median']:11.3f}")
    shape = cells[0]["stream_split_ms"]["frame_shape"]
    lines.append(f"(frames {'x'.join(map(str, shape))}; decode_convert = grey conversion/copy of a decoded frame; "
                 "preprocess = decode_convert + sector + resize)")
    return "\n".join(lines)


def add_speedups(cells: list[dict]) -> None:
    """``speedup_vs_eager`` = eager median / cell median for the same mode and threads."""
    eager = {(c["mode"], c["threads"]): c["latency_ms"]["median"] for c in cells if c["runtime"] == "eager"}
    for c in cells:
        base = eager.get((c["mode"], c["threads"]))
        c["speedup_vs_eager"] = base / c["latency_ms"]["median"] if base else None


# ---- the run --------------------------------------------------------------------------------
def _torch_available() -> bool:
    from echoweave.edge.runtime.base import module_installed

    return module_installed("torch")


def measure_gemms(cells: list[Cell], cfg: BenchConfig, notes: list[str]) -> dict[tuple, dict]:
    """GEMM ceiling per (runtime, precision, threads) of the cells; failures become notes."""
    out = {}
    for key in dict.fromkeys((c.runtime, c.precision, c.threads) for c in cells):
        runtime, precision, threads = key
        if runtime == "eager" and precision != "fp32":
            continue
        try:
            out[key] = measure_gemm(runtime, precision, threads, cfg.gemm_shape, cfg.gemm_seconds, cfg.cache_dir)
        except Exception as exc:  # a missing converter must not stop the latency benchmark
            notes.append(f"GEMM {runtime} {precision} t{threads} not measured: {type(exc).__name__}: {exc}"[:400])
    return out


def run_bench(cfg: BenchConfig) -> dict:
    """Run the whole host benchmark; returns the perf.json dict (validated, not yet written)."""
    from echoweave.benchmarks.schema import validate_perf

    cfg.check()
    folder = Path(cfg.artifact_dir)
    manifest = read_manifest(folder)
    host = host_info(cfg.clock_ghz, cfg.fma_units)
    notes = [f"load average at start {host['load_average_start']} on {host['usable_cpus']} usable CPUs: "
             "the machine may be shared; treat absolute numbers accordingly."]
    cells, skipped = plan_cells(manifest, cfg)
    frames, input_desc = load_recording(cfg, manifest)
    torch_ok = _torch_available()
    eager_info = {"available": False, "reason": "", "weights": None}
    eager_model = None
    if cfg.eager and torch_ok:
        from echoweave.benchmarks.eager import eager_model as build_eager

        eager_model, eager_info["weights"] = build_eager(manifest)
        eager_info["available"] = True
        cells += [Cell("eager", "fp32", t, m) for t in cfg.threads for m in cfg.modes]
    else:
        eager_info["reason"] = "disabled (--no-eager)" if not cfg.eager else \
            "torch is not installed (edge-only): no eager baseline, speed-ups not computed"
    if not cells:
        raise BenchError(f"{folder}: nothing to benchmark ({'; '.join(s['reason'] for s in skipped) or 'no artifacts'})")

    macs = None
    try:
        from echoweave.benchmarks.macs import manifest_macs

        macs = manifest_macs(manifest)
    except Exception as exc:
        notes.append(f"MACs not counted: {type(exc).__name__}: {exc}")
    if macs is None:
        notes.append("MACs unknown (no torch and no 'macs' in the manifest): MAC rates not reported")
    gemm = measure_gemms(cells, cfg, notes) if cfg.gemm else {}  # again after the cells; the best counts
    if not cfg.gemm:
        notes.append("GEMM ceilings not measured (--no-gemm)")

    import tempfile

    with tempfile.TemporaryDirectory(prefix="echoweave-bench-") as tmp:
        frames_npy = str(Path(tmp) / "frames.npy")
        np.save(frames_npy, frames)
        for cell in cells:
            if cfg.progress:
                print(f"[bench] load {cell.id}", flush=True)
            setup_cell(cell, folder, manifest, frames, cfg, eager_model)
            if cfg.memory:
                cell.memory = probe_memory(cell, folder, frames_npy)
    run_interleaved(cells, cfg)
    for cell in cells:
        if cell.mode == "stream":
            cell.split = stream_split(cell, frames)
    if cfg.gemm:  # a second GEMM pass after the cells: a busy moment at the start must not set the ceiling
        for key, again in measure_gemms(cells, cfg, []).items():
            first = gemm.get(key)
            best = again if first is None or again["gmacs"] > first["gmacs"] else first
            gemm[key] = {**best, "gmacs_before_after": [first and first["gmacs"], again["gmacs"]]}
    results = [cell_result(c, int(manifest["frames"]), cfg, host["peak"], macs, gemm) for c in cells]
    add_speedups(results)
    for c in cells:
        c.clf.close()
    host["load_average_end"] = load_average()
    perf = {
        "schema_version": 1, "kind": "echoweave-perf", "model_id": manifest["model_id"],
        "artifact_dir": str(folder), "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target": {"kind": "host", "device": None}, "host": host,
        "config": {**{k: v for k, v in asdict(cfg).items() if k not in ("artifact_dir", "progress", "cache_dir")},
                   "runtimes": sorted({c.runtime for c in cells}), "precisions": sorted({c.precision for c in cells}),
                   "input": input_desc, "interleave": f"round-robin slices of {cfg.chunk_seconds} s",
                   "frames_per_window": int(manifest["frames"])},
        "macs": macs, "gemm": list(gemm.values()), "eager": eager_info, "cells": results, "skipped": skipped,
        "notes": notes,
    }
    perf["config"]["gemm_shape"] = list(cfg.gemm_shape)
    perf["config"]["phantom_size"] = list(cfg.phantom_size)
    return validate_perf(json.loads(json.dumps(perf, default=float)))


def write_json(path: str | Path, data: dict) -> Path:
    """Write perf.json atomically (tmp + os.replace)."""
    return write_json_atomic(path, data, indent=1, sort_keys=False)

