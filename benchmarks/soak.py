"""``--soak MINUTES``: stream a phantom recording at full speed and watch for drift and leaks.

One `StreamingClassifier` pushes the looped recording frame after frame for the given time.
Reported: per-frame latency median of the first vs the last minute (or first/last 10 % of the
run when it is shorter than three minutes), the least-squares linear trend of latency over
time (ms per minute), and RSS at start/end (sampled about once a second) with its growth and
trend (MB per minute). A leak shows as steady RSS growth; thermal or allocator drift as a
latency trend.
"""
from __future__ import annotations

import time

import numpy as np


def drift_summary(t_s, latency_ms, rss_t_s, rss_mb, minutes: float) -> dict:
    """Drift statistics from per-frame times/latencies and RSS samples (see the module docstring)."""
    t = np.asarray(t_s, dtype=np.float64)
    lat = np.asarray(latency_ms, dtype=np.float64)
    span = t[-1] - t[0] if len(t) > 1 else 0.0
    window = 60.0 if span >= 180.0 else max(span * 0.1, 1e-9)
    first, last = lat[t <= t[0] + window], lat[t >= t[-1] - window]
    slope = float(np.polyfit(t / 60.0, lat, 1)[0]) if len(t) > 2 and span > 0 else 0.0
    rt, rm = np.asarray(rss_t_s, dtype=np.float64), np.asarray(rss_mb, dtype=np.float64)
    rss_slope = float(np.polyfit(rt / 60.0, rm, 1)[0]) if len(rt) > 2 and np.ptp(rt) > 0 else 0.0
    return {"minutes": float(minutes), "frames": int(len(lat)), "window_s": float(window),
            "median_first_ms": float(np.median(first)), "median_last_ms": float(np.median(last)),
            "drift_ratio": float(np.median(last) / np.median(first)), "trend_ms_per_min": slope,
            "rss_start_mb": float(rm[0]), "rss_end_mb": float(rm[-1]), "rss_growth_mb": float(rm[-1] - rm[0]),
            "rss_trend_mb_per_min": rss_slope}


def soak(clf, frames: np.ndarray, minutes: float, fps: float = 30.0, progress: bool = True) -> dict:
    """Stream ``frames`` (looped) through ``clf.stream()`` for ``minutes``; returns `drift_summary`
    plus the cell description."""
    from echoweave.benchmarks.harness import rss_mb

    stream = clf.stream(fps=fps)
    for i in range(stream.sector_frames + clf.span):  # warm-up: sector estimate + full buffer
        stream.push(frames[i % len(frames)])
    t_s, lat, rss_t, rss = [], [], [0.0], [rss_mb() or 0.0]
    start = time.perf_counter()
    end = start + minutes * 60.0
    next_rss, i = 1.0, 0
    while True:
        t0 = time.perf_counter()
        stream.push(frames[i % len(frames)])
        t1 = time.perf_counter()
        t_s.append(t0 - start)
        lat.append((t1 - t0) * 1000.0)
        i += 1
        if t1 - start >= next_rss:
            rss_t.append(t1 - start)
            rss.append(rss_mb() or 0.0)
            next_rss += 1.0
            if progress and int(t1 - start) % 30 == 0:
                print(f"[soak] {(t1 - start) / 60:.1f}/{minutes:.1f} min, {i} frames, last {lat[-1]:.2f} ms, "
                      f"RSS {rss[-1]:.0f} MB", flush=True)
        if t1 >= end:
            break
    rss_t.append(time.perf_counter() - start)
    rss.append(rss_mb() or 0.0)
    out = drift_summary(t_s, lat, rss_t, rss, minutes)
    out["cell"] = f"{clf.runtime}-{clf.precision}-stream"
    return out
