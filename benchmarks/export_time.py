"""Where `echoweave export` spends its time: every format and precision of one checkpoint, timed.

    python -m echoweave.benchmarks.export_time --label after --out docs/benchmarks/export_time_r50.json
    python -m echoweave.benchmarks.export_time --tiny --out /tmp/export_time_tiny.json   # CI-size, seconds

Runs the normal pipeline (`echoweave.export.pipeline.export_checkpoint`) once, on the full-size
ResNet-50 TFW timing checkpoint of `echoweave.benchmarks.fullsize` by default (trained into
``--run`` when missing; ``--checkpoint`` names another), with every default format and fp32 +
int8, and records:

* the pipeline's own stage timings (`ExportResult.timings`: load, calibration set, one entry per
  format and precision, and per method/step where the converters report them, verify, write);
* a profile of the toolchain calls that do the work (`torch.export`, `torch.onnx.export`, PT2E
  prepare/convert, ``to_edge_transform_and_lower``, ONNX Runtime ``quantize_static``, litert-torch
  ``convert``, ai-edge-quantizer calibrate/quantize, Core ML ``convert``/weight quantization),
  each call with its seconds, the format and precision being exported and, for tracing calls,
  the method (recognised by its example input's shape). Nested calls (the ``torch.export`` inside
  ``torch.onnx.export``) are recorded with their parent, so the totals do not double count;
* wall and process CPU seconds (all threads) per format and precision: on a shared machine the
  wall seconds grow with the load, the CPU seconds much less;
* host, load averages before and after, process niceness and threads (the machine is shared:
  read absolute seconds with the load beside them).

Several runs (``--label before``/``after``) go into one report, merged by label; the report's
``summary`` compares them.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

#: ``label: (module, attribute)``; an attribute ``Class.method`` patches a method on the class.
PROFILED = {
    "torch.export": ("torch.export", "export"),
    "run_decompositions": ("torch.export", "ExportedProgram.run_decompositions"),
    "torch.onnx.export": ("torch.onnx", "export"),
    "onnx quant_pre_process": ("onnxruntime.quantization.shape_inference", "quant_pre_process"),
    "onnx quantize_static": ("onnxruntime.quantization", "quantize_static"),
    "pt2e prepare": ("torchao.quantization.pt2e.quantize_pt2e", "prepare_pt2e"),
    "pt2e convert": ("torchao.quantization.pt2e.quantize_pt2e", "convert_pt2e"),
    "executorch lower": ("executorch.exir", "to_edge_transform_and_lower"),
    "executorch to_executorch": ("executorch.exir", "EdgeProgramManager.to_executorch"),
    "litert convert": ("litert_torch._convert.interface", "Converter.convert"),
    "ai-edge calibrate": ("ai_edge_quantizer.quantizer", "Quantizer.calibrate"),
    "ai-edge quantize": ("ai_edge_quantizer.quantizer", "Quantizer.quantize"),
    "coreml convert": ("coremltools", "convert"),
    "coreml quantize weights": ("coremltools.optimize.coreml", "linear_quantize_weights"),
}
#: Labels whose first tensor argument names the method being traced.
TRACING = frozenset({"torch.export", "torch.onnx.export"})
TINY_MODEL = {"name": "tfw", "backbone": "tiny", "width": 8, "feature_dim": 64, "gru_hidden": 32, "gru_layers": 2}


class CallProfile:
    """Records every call of the `PROFILED` functions while installed (see `installed`)."""

    def __init__(self, shapes: dict[tuple, str] | None = None):
        self.calls: list[dict[str, Any]] = []
        self.stage = "setup"
        self.shapes = shapes or {}  # first-input shape -> method name
        self.stages: dict[str, dict[str, float]] = {}  # stage -> {"wall_s", "cpu_s"}
        self._stack: list[str] = []

    def _method(self, label: str, args: tuple, kwargs: dict) -> str | None:
        if label not in TRACING:
            return None
        example = args[1] if len(args) > 1 else kwargs.get("args") or tuple((kwargs.get("kwargs") or {}).values())
        first = example[0] if isinstance(example, (tuple, list)) and example else None
        return self.shapes.get(tuple(getattr(first, "shape", ())))

    def wrap(self, label: str, fn):
        def timed(*args, **kwargs):
            parent = self._stack[-1] if self._stack else None
            self._stack.append(label)
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self._stack.pop()
                self.calls.append({"label": label, "stage": self.stage, "method": self._method(label, args, kwargs),
                                   "parent": parent, "seconds": round(time.perf_counter() - t0, 3),
                                   "cpu_s": round(time.process_time() - c0, 3)})
        timed.__wrapped__ = fn
        return timed

    @contextlib.contextmanager
    def labelled(self, stage: str) -> Iterator[None]:
        """Attribute calls to ``stage`` and record its wall and process CPU seconds (all threads:
        under load the CPU seconds move much less than the wall seconds)."""
        self.stage = stage
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.stages[stage] = {"wall_s": round(time.perf_counter() - t0, 3),
                                  "cpu_s": round(time.process_time() - c0, 3)}
            self.stage = "between"

    @contextlib.contextmanager
    def installed(self) -> Iterator["CallProfile"]:
        """Patch the profiled functions (those whose package is installed); restore on exit."""
        undo = []
        for label, (module_name, attr) in PROFILED.items():
            try:
                owner = importlib.import_module(module_name)
                *path, name = attr.split(".")
                for part in path:
                    owner = getattr(owner, part)
                original = getattr(owner, name)
            except (ImportError, AttributeError):
                continue
            setattr(owner, name, self.wrap(label, original))
            undo.append((owner, name, original))
        try:
            yield self
        finally:
            for owner, name, original in reversed(undo):
                setattr(owner, name, original)

    def summary(self) -> dict[str, Any]:
        """Per stage (format precision): per label (``"<label> in <parent>"`` for nested calls, whose
        seconds are inside their parent's) the calls, seconds and seconds per traced method."""
        out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for c in self.calls:
            key = c["label"] if c["parent"] is None else f"{c['label']} in {c['parent']}"
            row = out[c["stage"]].setdefault(key, {"calls": 0, "seconds": 0.0, "cpu_s": 0.0,
                                                   "methods": defaultdict(float)})
            row["calls"] += 1
            row["seconds"] = round(row["seconds"] + c["seconds"], 3)
            row["cpu_s"] = round(row["cpu_s"] + c.get("cpu_s", 0.0), 3)
            if c["method"]:
                row["methods"][c["method"]] = round(row["methods"][c["method"]] + c["seconds"], 3)
        return {stage: {label: {**row, "methods": dict(row["methods"])} for label, row in labels.items()}
                for stage, labels in out.items()}


@contextlib.contextmanager
def stage_labels(profile: CallProfile) -> Iterator[None]:
    """Label profiled calls with the format and precision being exported (wraps the pipeline's
    converter lookup and its verify stage; works with any version of the pipeline)."""
    from echoweave.export import pipeline

    original_load, original_verify = pipeline.load_converter, pipeline.verify

    def load_converter(fmt):
        converter = original_load(fmt)

        def labelled(ctx, precision):
            with profile.labelled(f"{fmt} {precision}"):
                return converter(ctx, precision)
        return labelled

    def verify(*args, **kwargs):
        with profile.labelled("verify"):
            return original_verify(*args, **kwargs)

    pipeline.load_converter, pipeline.verify = load_converter, verify
    try:
        yield
    finally:
        pipeline.load_converter, pipeline.verify = original_load, original_verify


def method_shapes(checkpoint: Path) -> dict[tuple, str]:
    """``{first example input shape: method}`` of the checkpoint's model."""
    from echoweave.export.pipeline import load_checkpoint_model

    model, _, _ = load_checkpoint_model(checkpoint)
    return {tuple(model.example_inputs(m)[0].shape): m for m in model.methods}


def tiny_checkpoint(out: Path) -> Path:
    """A one-epoch tiny TFW (tiny ResNet, 32 px) checkpoint trained into ``out`` in seconds."""
    from echoweave.train.config import TrainConfig
    from echoweave.train.engine.run import run_training

    cfg = TrainConfig.from_dict({
        "out": str(out), "device": "cpu", "amp": "none", "channels_last": False, "seed": 0, "threads": 1,
        "stage": "temporal", "model": dict(TINY_MODEL),
        "data": {"path": "phantom", "phantom_patients": 3, "phantom_clips_per_view": 1, "phantom_frames": 8,
                 "phantom_size": 48, "augment": False, "eval_windows": 2, "val_fraction": 0.34,
                 "preprocessing": {"resize": 36, "crop": 32}},
        "optim": {"epochs": 1, "batch_size": 8, "lr": 0.01},
    })
    return run_training(cfg, show_progress=False).checkpoint


def measure(checkpoint: Path, out: Path, formats: list[str], precisions: list[str], calib_clips: int,
            parity_clips: int, threads: int, jobs: int = 1) -> dict[str, Any]:
    """Export ``checkpoint`` once with the call profile installed; returns the run's report.

    With ``jobs > 1`` the converters run in forked workers (`echoweave.export.parallel`): their
    stage timings come back, but the toolchain-call profile sees only this process (the shared
    traces), and CPU seconds add the workers' (``RUSAGE_CHILDREN``)."""
    import resource

    import torch

    from echoweave.benchmarks.hostinfo import host_info, load_average
    from echoweave.export.pipeline import export_checkpoint

    torch.set_num_threads(threads)
    profile = CallProfile(method_shapes(checkpoint))
    load_before = load_average()
    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    t0, c0, w0 = time.perf_counter(), time.process_time(), children_cpu()
    with profile.installed(), stage_labels(profile):
        result = export_checkpoint(checkpoint, out, formats=formats, precisions=precisions,
                                   calib_clips=calib_clips, parity_clips=parity_clips, overwrite=True, jobs=jobs)
    total, total_cpu = time.perf_counter() - t0, time.process_time() - c0 + children_cpu() - w0
    # The pipeline's per-artifact stage is "<format> <precision>: export -> ... -> serialize".
    per_format = {k.split(":")[0]: v for k, v in result.timings.items() if ":" in k and k.split(" ")[0] in formats}
    return {
        "checkpoint": str(checkpoint), "formats": formats, "precisions": precisions,
        "calib_clips": calib_clips, "parity_clips": parity_clips, "threads": threads, "jobs": jobs, "niceness": os.nice(0),
        "load_average_before": load_before, "load_average_after": load_average(),
        "host": host_info(), "total_s": round(total, 1), "total_cpu_s": round(total_cpu, 1),
        "per_format_precision_s": {k: round(v, 1) for k, v in per_format.items()},
        "per_stage_wall_and_cpu_s": profile.stages,
        "pipeline_timings_s": result.timings,
        "toolchain_calls": profile.summary(), "calls": profile.calls,
        "artifacts": [a["id"] for a in result.manifest["artifacts"]], "skipped": result.skipped,
    }


def merge(path: Path, label: str, run: dict[str, Any]) -> dict[str, Any]:
    """The report at ``path`` with ``runs[label]`` replaced by ``run`` and the summary redone."""
    report = json.loads(path.read_text()) if path.is_file() else {}
    report.setdefault("benchmark", "export_time")
    report["what"] = ("seconds of one `echoweave export` of every listed format and precision, per format x "
                      "precision and per toolchain call; see echoweave/benchmarks/export_time.py")
    report.setdefault("runs", {})[label] = run
    report["summary"] = {name: {"total_s": r["total_s"], "total_cpu_s": r.get("total_cpu_s"),
                                "load_average_before": r["load_average_before"],
                                "load_average_after": r["load_average_after"], "niceness": r["niceness"],
                                "per_format_precision_s": r["per_format_precision_s"],
                                "per_stage_wall_and_cpu_s": r.get("per_stage_wall_and_cpu_s")}
                         for name, r in report["runs"].items()}
    if {"before", "after"} <= set(report["runs"]):
        before, after = report["runs"]["before"], report["runs"]["after"]
        report["summary"]["speedup_total_wall"] = round(before["total_s"] / after["total_s"], 2)
        if before.get("total_cpu_s") and after.get("total_cpu_s"):
            report["summary"]["speedup_total_cpu"] = round(before["total_cpu_s"] / after["total_cpu_s"], 2)
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from echoweave.edge.formats import default_formats

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=None, help="checkpoint to export (default: the full-size timing "
                                                       "checkpoint in --run, trained when missing)")
    ap.add_argument("--run", default="bench_runs/tfw_r50_timing", help="where the full-size timing checkpoint lives")
    ap.add_argument("--tiny", action="store_true", help="a tiny TFW trained on the spot (CI-size, seconds)")
    ap.add_argument("--formats", default=",".join(default_formats()))
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--calib_clips", type=int, default=8, help="as `python -m echoweave.benchmarks.fullsize`")
    ap.add_argument("--parity_clips", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=1, help="converter worker processes (echoweave export --jobs)")
    ap.add_argument("--label", default="run", help="name of this run inside the report (before, after ...)")
    ap.add_argument("--artifacts", default=None, help="export folder (default: a temporary one)")
    ap.add_argument("--out", default=None, help="JSON report to write or merge into")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="echoweave-export-time-") as tmp:
        if args.tiny:
            checkpoint = tiny_checkpoint(Path(tmp) / "run")
        elif args.checkpoint:
            checkpoint = Path(args.checkpoint)
        else:
            from echoweave.benchmarks.fullsize import timing_checkpoint
            from echoweave.train.engine.checkpoint import find_checkpoint

            checkpoint = find_checkpoint(args.run) or timing_checkpoint(Path(args.run), args.threads)
        run = measure(checkpoint, Path(args.artifacts or Path(tmp) / "artifacts"), args.formats.split(","),
                      args.precisions.split(","), args.calib_clips, args.parity_clips, args.threads, args.jobs)
    run["label"] = args.label
    if args.out:
        from echoweave.edge.atomic import write_json_atomic

        write_json_atomic(args.out, merge(Path(args.out), args.label, run), indent=1, sort_keys=False)
    print(json.dumps({k: run[k] for k in ("label", "total_s", "per_format_precision_s", "load_average_before",
                                          "load_average_after")}, indent=1))
    return run


if __name__ == "__main__":
    main()
