"""Build the full-size ResNet-50 TFW artifacts the latency goals are measured on.

    python -m echoweave.benchmarks.fullsize --out bench_artifacts      # -> bench_artifacts/tfw_r50/
    python -m echoweave.benchmarks.fullsize --run bench_runs/tfw_mnv3s_timing \
        --model '{"backbone": "mobilenet_v3_small", "feature_dim": 256, "contrast": "window_mean"}'
    echoweave bench bench_artifacts/tfw_r50 --threads 1,2 --seconds 20 --out bench_out/r50

No trained ResNet-50 checkpoint ships with the kit, so this trains the paper's TFW model
(ResNet-50 + 3-layer GRU, 224x224 grayscale, 12 classes) for one short epoch on a small phantom
set and exports it with the normal pipeline (`echoweave.export.pipeline.export_checkpoint`:
ExecuTorch XNNPACK, ONNX Runtime and LiteRT, fp32 and int8 calibrated on phantom clips).
The weights are barely trained: use the result for **timing only** (latency does not depend on
weight values; int8 calibration ranges do, slightly). With a real checkpoint, run
``echoweave export RUN --out artifacts`` instead and bench that.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def timing_checkpoint(out: Path, threads: int = 2, model: dict | None = None) -> Path:
    """Train the one-epoch TFW timing checkpoint (ResNet-50 unless ``model`` overrides the model
    config, e.g. ``{"backbone": "mobilenet_v3_small", "feature_dim": 256}``) into ``out``; returns
    its folder."""
    from echoweave.train.config import TrainConfig
    from echoweave.train.engine.run import run_training

    cfg = TrainConfig.from_dict({
        "out": str(out), "device": "cpu", "amp": "none", "channels_last": False, "seed": 0, "threads": threads,
        "stage": "temporal",
        "model": {"name": "tfw", "backbone": "resnet50", **(model or {})},
        "data": {"path": "phantom", "phantom_patients": 3, "phantom_clips_per_view": 1, "phantom_frames": 8,
                 "phantom_size": 128, "augment": False, "eval_windows": 1, "val_fraction": 0.34},
        "optim": {"epochs": 1, "batch_size": 4, "lr": 0.003},
    })
    return run_training(cfg, show_progress=True).checkpoint


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="bench_artifacts", help="parent folder of tfw_r50/")
    ap.add_argument("--run", default="bench_runs/tfw_r50_timing", help="where the timing checkpoint is trained")
    ap.add_argument("--formats", default="executorch,onnx,litert")
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=0, help="converter worker processes (0: the usable CPUs, at most 2)")
    ap.add_argument("--model", default="", help='JSON overrides of the model config, e.g. \'{"backbone": '
                                                '"mobilenet_v3_small", "feature_dim": 256}\' (224 px either way)')
    args = ap.parse_args(argv)
    import json
    import torch

    torch.set_num_threads(args.threads)
    from echoweave.train.engine.checkpoint import find_checkpoint

    ckpt = find_checkpoint(args.run) or timing_checkpoint(Path(args.run), args.threads,
                                                          json.loads(args.model) if args.model else None)
    from echoweave.export.parallel import default_jobs
    from echoweave.export.pipeline import export_checkpoint

    res = export_checkpoint(ckpt, args.out, formats=args.formats.split(","), precisions=args.precisions.split(","),
                            calib_clips=8, parity_clips=4, overwrite=True, jobs=args.jobs or default_jobs())
    print(res.folder)


if __name__ == "__main__":
    main()
