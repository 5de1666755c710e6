"""Training throughput of the full-size ResNet-50 TFW on a GPU: clips per second per setting.

    python -m echoweave.benchmarks.train_throughput --out docs/benchmarks/train_throughput_cuda.json   # CUDA
    python -m echoweave.benchmarks.train_throughput --device cpu --tiny --out /tmp/tt.json            # CI-size

One process, synthetic batches (uniform pixels, random labels: throughput does not depend on
the values), the model from the kit's registry (``build_model(name="tfw", backbone="resnet50")``),
AdamW and cross-entropy as the training recipes use. Settings, each warmed up then timed:

* ``fp32`` — the baseline: fp32, contiguous (NCHW) weights, eager;
* ``bf16_cl`` — bf16 autocast + channels-last weights, eager;
* ``bf16_cl_ddp1`` — the same inside `DistributedDataParallel` with a one-process group (NCCL on
  CUDA, gloo on CPU): the cost of the DDP wrapper and its gradient all-reduce hooks alone;
* ``bf16_cl_compile`` — the same with ``torch.compile`` (its compile time is reported apart from
  the timed steps, in ``warmup_s``).

A time budget (``--budget_s``, 450 s by default, so the run ends in under 8 minutes) guards the
run: a setting that would start with less than its expected time left is skipped with the reason.
On a machine without CUDA, ``--device cpu --tiny`` runs the same code paths on a tiny backbone
with tiny sizes (``torch.compile`` with the ``eager`` backend there unless ``--compile_backend``
says otherwise), which is what tests/test_train_throughput.py does.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

#: ``name: (amp bf16, channels_last, ddp, compile)`` in run order (compile last: it costs the most).
SETTINGS = {
    "fp32": (False, False, False, False),
    "bf16_cl": (True, True, False, False),
    "bf16_cl_ddp1": (True, True, True, False),
    "bf16_cl_compile": (True, True, False, True),
}
FULL_MODEL = {"name": "tfw", "backbone": "resnet50"}
TINY_MODEL = {"name": "tfw", "backbone": "tiny", "width": 8, "feature_dim": 64, "gru_hidden": 32, "gru_layers": 2,
              "input_size": 32}


@dataclass
class ThroughputConfig:
    """What to measure.

    Attributes:
        device: ``cuda`` or ``cpu``.
        tiny: tiny backbone and sizes (CI / CPU).
        batch: clips per step.
        warmup: untimed steps per setting (compilation happens here).
        steps: timed steps per setting.
        settings: names from `SETTINGS`.
        compile_backend: ``torch.compile`` backend (``inductor``; ``eager`` checks the path cheaply).
        budget_s: total seconds the run may take; settings that would overrun are skipped.
        threads: CPU threads (0 = torch default).
    """

    device: str = "cuda"
    tiny: bool = False
    batch: int = 32
    warmup: int = 5
    steps: int = 30
    settings: tuple[str, ...] = tuple(SETTINGS)
    compile_backend: str = "inductor"
    budget_s: float = 450.0
    threads: int = 0


def build(cfg: ThroughputConfig, channels_last: bool):
    """``(model in training mode on the device, ModelConfig)`` from the kit's registry."""
    import torch

    from echoweave.train.models import build_model

    model = build_model(**(TINY_MODEL if cfg.tiny else FULL_MODEL)).to(cfg.device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, model.cfg


def synthetic_batch(model_cfg, batch: int, device: str, seed: int = 0):
    """``(clips (B, T, C, S, S) in [0, 1), labels (B,))`` on ``device``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    s = model_cfg.input_size
    x = torch.rand(batch, model_cfg.frames, model_cfg.in_channels, s, s, generator=g)
    y = torch.randint(0, model_cfg.num_classes, (batch,), generator=g)
    return x.to(device), y.to(device)


class OneProcessGroup:
    """A one-rank `torch.distributed` group (NCCL on CUDA, gloo on CPU) for the DDP setting."""

    def __init__(self, device: str):
        self.backend = "nccl" if device.startswith("cuda") else "gloo"
        self._folder = None

    def __enter__(self):
        import torch.distributed as dist

        self._folder = tempfile.mkdtemp(prefix="echoweave-ddp-")  # the FileStore creates its file inside
        dist.init_process_group(self.backend, init_method=f"file://{os.path.join(self._folder, 'store')}",
                                rank=0, world_size=1)
        return self

    def __exit__(self, *exc):
        import torch.distributed as dist

        dist.destroy_process_group()
        shutil.rmtree(self._folder, ignore_errors=True)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure_setting(name: str, cfg: ThroughputConfig) -> dict[str, Any]:
    """Warm up, then time ``cfg.steps`` training steps of one setting; returns its row."""
    import contextlib

    import torch
    import torch.nn.functional as F

    amp, channels_last, ddp, compiled = SETTINGS[name]
    model, model_cfg = build(cfg, channels_last)
    x, y = synthetic_batch(model_cfg, cfg.batch, cfg.device)
    group = OneProcessGroup(cfg.device) if ddp else contextlib.nullcontext()
    with group:
        net = model
        if compiled:
            net = torch.compile(net, backend=cfg.compile_backend)
        if ddp:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net = DDP(net, device_ids=[torch.device(cfg.device).index or 0] if cfg.device.startswith("cuda") else None)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
        device_type = torch.device(cfg.device).type

        def step() -> None:
            autocast = torch.autocast(device_type=device_type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()
            with autocast:
                loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        if device_type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(cfg.warmup):
            step()
        _sync(cfg.device)
        warmup_s = time.perf_counter() - t0
        times = []
        for _ in range(cfg.steps):
            t1 = time.perf_counter()
            step()
            _sync(cfg.device)  # per-step times need the GPU to finish; the sync costs microseconds
            times.append(time.perf_counter() - t1)
    total = sum(times)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device_type == "cuda" else None
    return {"setting": name, "amp": "bf16" if amp else "fp32", "channels_last": channels_last,
            "ddp": (f"DistributedDataParallel, 1 process ({group.backend})" if ddp else None),
            "compile": cfg.compile_backend if compiled else None, "batch_clips": cfg.batch,
            "frames_per_clip": model_cfg.frames, "input_size": model_cfg.input_size, "warmup_steps": cfg.warmup,
            "warmup_s": round(warmup_s, 3), "steps": cfg.steps, "timed_s": round(total, 4),
            "clips_per_s": cfg.batch * cfg.steps / total, "frames_per_s": cfg.batch * model_cfg.frames * cfg.steps / total,
            "step_ms_median": 1000 * statistics.median(times), "step_ms_min": 1000 * min(times),
            "peak_memory_mb": peak}


def expected_seconds(name: str, done: list[dict[str, Any]]) -> float:
    """A guess of a setting's cost from the settings already run (compile: 3x plus 120 s)."""
    if not done:
        return 0.0
    last = max(r["warmup_s"] + r["timed_s"] for r in done)
    return 3 * last + 120.0 if SETTINGS[name][3] else last


def run(cfg: ThroughputConfig) -> dict[str, Any]:
    """Every setting of ``cfg`` within its budget; returns the report dict."""
    import torch

    from echoweave.benchmarks.hostinfo import host_info, load_average

    unknown = [s for s in cfg.settings if s not in SETTINGS]
    if unknown:
        raise ValueError(f"unknown settings {unknown}; known: {', '.join(SETTINGS)}")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --device cpu --tiny to check the code paths")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    start, load_before = time.perf_counter(), load_average()
    rows, skipped = [], []
    for name in cfg.settings:
        left = cfg.budget_s - (time.perf_counter() - start)
        need = expected_seconds(name, rows)
        if need > left:
            skipped.append({"setting": name, "reason": f"about {need:.0f} s expected, {left:.0f} s of the budget left"})
            continue
        rows.append(measure_setting(name, cfg))
        print(f"[train_throughput] {name}: {rows[-1]['clips_per_s']:.1f} clips/s "
              f"(step {rows[-1]['step_ms_median']:.1f} ms, warm-up {rows[-1]['warmup_s']:.1f} s)", flush=True)
    base = next((r["clips_per_s"] for r in rows if r["setting"] == "fp32"), None)
    for r in rows:
        r["speedup_vs_fp32"] = r["clips_per_s"] / base if base else None
    device = {"type": torch.device(cfg.device).type, "torch": torch.__version__,
              "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None}
    if cfg.device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(cfg.device))
        device.update(name=props.name, memory_gb=round(props.total_memory / 2**30, 1),
                      capability=f"{props.major}.{props.minor}")
    return {"benchmark": "train_throughput", "config": asdict(cfg),
            "model": TINY_MODEL if cfg.tiny else FULL_MODEL, "device": device, "host": host_info(),
            "load_average_before": load_before, "load_average_after": load_average(),
            "total_s": round(time.perf_counter() - start, 1), "settings": rows, "skipped": skipped,
            "what": "training clips per second, synthetic batches, one process; see "
                    "echoweave/benchmarks/train_throughput.py"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (cuda:N) or cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny backbone and sizes (CPU code-path check)")
    ap.add_argument("--batch", type=int, default=None, help="clips per step (default 32; 2 with --tiny)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps per setting (default 5; 1 with --tiny)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per setting (default 30; 2 with --tiny)")
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated subset of {', '.join(SETTINGS)}")
    ap.add_argument("--compile_backend", default=None, help="torch.compile backend (default inductor; eager on CPU)")
    ap.add_argument("--budget_s", type=float, default=450.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the JSON report here")
    a = ap.parse_args(argv)
    cfg = ThroughputConfig(
        device=a.device, tiny=a.tiny, batch=a.batch or (2 if a.tiny else 32), warmup=a.warmup or (1 if a.tiny else 5),
        steps=a.steps or (2 if a.tiny else 30), settings=tuple(s for s in a.settings.split(",") if s),
        compile_backend=a.compile_backend or ("inductor" if a.device.startswith("cuda") else "eager"),
        budget_s=a.budget_s, threads=a.threads)
    report = run(cfg)
    if a.out:
        from echoweave.edge.atomic import write_json_atomic

        write_json_atomic(a.out, report, indent=1, sort_keys=False)
    print(json.dumps([{k: r[k] for k in ("setting", "clips_per_s", "step_ms_median", "warmup_s")}
                      for r in report["settings"]], indent=1))
    return report


if __name__ == "__main__":
    main()
