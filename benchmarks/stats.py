"""Latency statistics and the real-time verdict (numpy only, so the edge-only path can use them).

Conventions (also stated in perf.md):

* percentiles use numpy's default linear interpolation between order statistics;
* ``std`` is the sample standard deviation (``ddof=1``; 0 for a single sample);
* ``trimmed_mean`` drops ``trim`` (10 %) of the samples at *each* end, the way
  ``scipy.stats.trim_mean(x, 0.1)`` does (``int(trim * n)`` samples per side).

Real-time budget: a stream must finish each frame within one frame period (33.3 ms at 30 fps);
a window model that classifies non-overlapping windows of T frames must finish each window
within T frame periods (133 ms for T=4 at 30 fps). ``headroom = budget / latency`` (> 1 keeps
up) and ``sustainable_fps`` is the frame rate the measured latency could keep up with.
"""
from __future__ import annotations

import numpy as np

STAT_KEYS = ("n", "mean", "median", "p90", "p99", "min", "max", "std", "trimmed_mean")


def trimmed_mean(samples, trim: float = 0.1) -> float:
    """Mean after dropping ``int(trim * n)`` of the smallest and of the largest samples."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    cut = int(trim * len(x))
    kept = x[cut : len(x) - cut] if cut else x
    return float(kept.mean())


def latency_stats(samples_ms, trim: float = 0.1) -> dict:
    """Summary of per-call latencies in milliseconds.

    Returns:
        ``{"n", "mean", "median", "p90", "p99", "min", "max", "std", "trimmed_mean"}`` (floats, n int).

    Raises:
        ValueError: no samples, or a non-finite / negative latency.
    """
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no latency samples")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("latencies must be finite and non-negative")
    p90, p99, med = np.percentile(x, [90, 99, 50])
    return {"n": int(x.size), "mean": float(x.mean()), "median": float(med), "p90": float(p90), "p99": float(p99),
            "min": float(x.min()), "max": float(x.max()), "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
            "trimmed_mean": trimmed_mean(x, trim)}


def budget_ms(mode: str, fps: float, frames: int) -> float:
    """The real-time budget of one call: a frame period (stream) or T frame periods (window)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if mode == "stream":
        return 1000.0 / fps
    if mode == "window":
        return frames * 1000.0 / fps
    raise ValueError(f"mode must be 'window' or 'stream', got {mode!r}")


def realtime_verdict(stats: dict, mode: str, fps: float, frames: int) -> dict:
    """Does a cell keep up with a live stream at ``fps``?

    The verdict is judged on p99 (a stream that is late 1 % of the time drops frames) and also
    reported on the median:

    * ``"real-time"``: p99 within budget;
    * ``"real-time at the median only"``: median within budget, p99 not;
    * ``"too slow"``: the median exceeds the budget.

    Returns:
        ``{"budget_ms", "headroom_median", "headroom_p99", "sustainable_fps_median",
        "sustainable_fps_p99", "verdict"}``. Sustainable fps: frames the call covers (1 or T)
        per second of latency.
    """
    budget = budget_ms(mode, fps, frames)
    covered = 1 if mode == "stream" else frames
    # Device tools may not report a median or p99 (LiteRT benchmark_model prints avg/std/min/max):
    # fall back to the mean for the centre, and never claim "real-time" without a p99.
    med = stats["median"] if stats.get("median") is not None else stats["mean"]
    p99 = stats.get("p99")
    if p99 is not None and p99 <= budget:
        verdict = "real-time"
    else:
        verdict = "real-time at the median only" if med <= budget else "too slow"

    def ratio(x, scale):
        return None if x is None else (scale / x if x > 0 else float("inf"))

    return {"budget_ms": budget, "headroom_median": ratio(med, budget), "headroom_p99": ratio(p99, budget),
            "sustainable_fps_median": ratio(med, covered * 1000.0), "sustainable_fps_p99": ratio(p99, covered * 1000.0),
            "verdict": verdict, "judged_on": "p99" if p99 is not None else (
                "median (no p99 reported)" if stats.get("median") is not None else "mean (no median/p99 reported)")}
