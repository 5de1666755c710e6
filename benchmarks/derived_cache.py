"""What the per-clip derived-input cache saves a training epoch (`DerivedCache`).

Times one epoch of training windows of a model with a derived input (the two-stream network's
Farneback flow) drawn from a phantom store, with the flow computed per window (as with
augmentation on) and sliced from the per-clip cache (augmentation off), in one process, the two
alternating for ``repeats`` rounds (median reported, so a load change hits both). Also the
cache's build time and memory. The data loader is what a GPU waits for: the model itself is
not run.

    python -m echoweave.benchmarks.derived_cache --size 64 --frames 9 --stride 2 --out report.json
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _epoch_seconds(ds) -> float:
    t0 = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    return time.perf_counter() - t0


def measure(size: int, frames: int, stride: int, clips_per_view: int, clip_frames: int, windows: int,
            repeats: int = 3, threads: int = 1) -> dict:
    """One epoch's data time with and without the cache; see the module docstring."""
    import torch

    from echoweave.benchmarks.hostinfo import host_info, load_average
    from echoweave.edge.preprocess import PreprocessSpec
    from echoweave.train.config import DataConfig
    from echoweave.train.data.transforms import eval_transform
    from echoweave.train.engine.data import WindowSamples, load_store
    from echoweave.train.engine.derived_cache import DerivedCache
    from echoweave.train.models import ModelConfig, build_model

    torch.set_num_threads(threads)
    import cv2

    cv2.setNumThreads(threads)
    load_before = load_average()
    spec = PreprocessSpec(resize=size + size // 8, crop=size)
    data = DataConfig(phantom_patients=3, phantom_clips_per_view=clips_per_view, phantom_frames=clip_frames,
                      phantom_size=max(112, size + size // 4), preprocessing=spec)
    store = load_store(data, show_progress=False)
    chunks = max(1, (frames - 1) // 4)
    model = build_model(ModelConfig(name="two_stream", backbone="tiny", input_size=size, frames=frames,
                                    frame_stride=stride, flow_pairs=(frames - 1) // chunks, flow_chunks=chunks))
    tf = eval_transform(spec)
    clips = np.arange(len(store))
    t0 = time.perf_counter()
    cache = DerivedCache(store, clips, tf, model.derived_inputs(), stride, show_progress=False)
    build_s = time.perf_counter() - t0
    plain = WindowSamples(store, clips, tf, frames, "consecutive", train=True, repeats=windows, stride=stride)
    cached = WindowSamples(store, clips, tf, frames, "consecutive", train=True, repeats=windows, stride=stride,
                           derived=cache)
    per_window, sliced = [], []
    for _ in range(repeats):
        # per window: the pixels, then the flow the model would compute from them
        t0 = time.perf_counter()
        for i in range(len(plain)):
            model.derive(plain[i]["x"][None])
        per_window.append(time.perf_counter() - t0)
        sliced.append(_epoch_seconds(cached))
    return {
        "benchmark": "derived_cache", "host": host_info(), "load_average_before": load_before,
        "load_average_after": load_average(), "threads": threads,
        "setup": {"input_size": size, "frames": frames, "frame_stride": stride, "clips": len(store),
                  "clip_frames": clip_frames, "windows_per_clip": windows, "flow_pairs_per_window": frames - 1},
        "cache": {"build_s": round(build_s, 3), "megabytes": round(cache.cached_bytes / 1e6, 1),
                  "summary": cache.summary()},
        "epoch_s": {"flow_per_window": [round(v, 3) for v in per_window], "flow_from_cache": [round(v, 3) for v in sliced]},
        "median_epoch_s": {"flow_per_window": round(float(np.median(per_window)), 3),
                           "flow_from_cache": round(float(np.median(sliced)), 3)},
        "speedup": round(float(np.median(per_window) / np.median(sliced)), 2),
        "epochs_to_repay_build": round(build_s / max(1e-9, np.median(per_window) - np.median(sliced)), 2),
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=64, help="model input side (px)")
    p.add_argument("--frames", type=int, default=9, help="frames per window")
    p.add_argument("--stride", type=int, default=2, help="frame stride")
    p.add_argument("--clips_per_view", type=int, default=1)
    p.add_argument("--clip_frames", type=int, default=32)
    p.add_argument("--windows", type=int, default=4, help="training windows per clip and epoch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write the JSON report here")
    a = p.parse_args(argv)
    report = measure(a.size, a.frames, a.stride, a.clips_per_view, a.clip_frames, a.windows, a.repeats, a.threads)
    text = json.dumps(report, indent=2)
    if a.out:
        from echoweave.edge.atomic import write_text_atomic

        write_text_atomic(a.out, text + "\n")
    print(json.dumps({k: report[k] for k in ("setup", "cache", "median_epoch_s", "speedup", "load_average_before")}))
    return report


if __name__ == "__main__":
    main()
