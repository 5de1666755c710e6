"""Peak-RSS probe: run in a fresh process by the harness, one cell per process.

    python -m echoweave.benchmarks.memprobe '{"folder": ..., "runtime": ..., "precision": ...,
                                             "threads": 2, "mode": "stream", "calls": 5}'

Imports the runtime, records RSS, loads the artifact through `echoweave.edge.load` (or the eager
model), makes a few calls of the cell's mode and prints one JSON line::

    {"peak_rss_mb": ..., "rss_before_load_mb": ..., "rss_after_load_mb": ..., "model_peak_mb": ...}

``peak_rss_mb`` is ``VmHWM`` of /proc/self/status, the high-water mark of this process's
memory (Python + runtime + model + buffers). Not ``ru_maxrss``: Linux keeps that across
``execve``, so a child forked from a large parent reports the *parent's* RSS (a full-size run
showed peak RSS growing cell after cell that way). ``model_peak_mb`` = peak - RSS before the
load, what loading and running added.
"""
from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import numpy as np

from echoweave.benchmarks.cells import BenchConfig, Cell, proc_status_mb, rss_mb, setup_cell
from echoweave.benchmarks.threads import apply_threads
from echoweave.edge.manifest import read_manifest


def hwm_mb() -> float | None:
    """Peak resident set size of this process (VmHWM) in MB, or None without /proc."""
    return proc_status_mb("VmHWM")


def main(argv: list[str]) -> None:
    req = json.loads(argv[0])
    folder = Path(req["folder"])
    manifest = read_manifest(folder)
    cfg = BenchConfig(str(folder), warmup=0, load_repeats=1, progress=False)
    frames = np.load(req["frames_npy"])  # (N, H, W) uint8, the harness's recording
    eager = None
    if req["runtime"] == "eager":
        from echoweave.benchmarks.eager import eager_model

        eager = eager_model(manifest)[0]
    else:  # import the runtime before measuring the baseline
        from echoweave.edge.runtime.base import RUNTIMES, installed_module

        __import__(installed_module(req["runtime"]) or RUNTIMES[req["runtime"]].modules[0])
    apply_threads(req["runtime"], int(req["threads"]))
    before = rss_mb()
    cell = Cell(req["runtime"], req["precision"], int(req["threads"]), req["mode"])
    setup_cell(cell, folder, manifest, frames, cfg, eager)
    after = rss_mb()
    for _ in range(int(req.get("calls", 5))):
        cell.call()
    peak = hwm_mb()
    if peak is None:  # no /proc (macOS): ru_maxrss is bytes there, KiB on Linux
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = rss / 2**20 if sys.platform == "darwin" else rss / 1024.0
    print(json.dumps({"peak_rss_mb": peak, "rss_before_load_mb": before, "rss_after_load_mb": after,
                      "model_peak_mb": None if before is None else peak - before,
                      "calls": int(req.get("calls", 5)) + cell.warmup + 1}))


if __name__ == "__main__":
    main(sys.argv[1:])
