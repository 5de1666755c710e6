"""Where int8 loses a model's decisions: ExecuTorch's PT2E int8 of ``embed_frame``, simulated in
eager PyTorch (QDQ), measured on held-out windows, whole and with parts left fp32.

    python -m echoweave.benchmarks.int8_sensitivity RUN --out docs/benchmarks/int8_sensitivity_mnv3s.json
    python -m echoweave.benchmarks.int8_sensitivity RUN --keep_fp32 "features\\.(9|10|11)$" --keep_fp32 avgpool

For each setting (``all int8`` first, then one per ``--keep_fp32`` regular expression over module
paths such as ``model.backbone.features.3``, and ``--per_block`` for every direct child of the
backbone's first container) it reports, against eager fp32 on the checkpoint's held-out
windows (the export's own calibration and parity sets):

* ``embed_sqnr_db``: SQNR of the per-frame features;
* ``contrast_sqnr_db``: SQNR of frame-minus-window-mean of those features (what a feature-
  contrast TFW head reads: the static part cancels, the per-frame rounding noise does not);
* ``logit_sqnr_db``, ``agreement`` and ``accuracy`` of the window head (eager fp32) on them.

A measurement, not a converter: the exported artifacts' own parity is in their ``parity.md``.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch


def _sqnr(ref: torch.Tensor, test: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.pow(2).mean() / (ref - test).pow(2).mean().clamp_min(1e-30)))


def _contrast(features: torch.Tensor, windows: int, frames: int) -> torch.Tensor:
    f = features.reshape(windows, frames, -1)
    return f - f.mean(1, keepdim=True)


def measure(checkpoint: str, keep_fp32: list[str], per_block: bool = False, calib_clips: int = 32) -> dict:
    """Run every setting on ``checkpoint``; returns the report (see the module docstring)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from echoweave.edge.preprocess import PreprocessSpec
    from echoweave.export import executorch_format as ef
    from echoweave.export.calibration import calibration_set, held_out_set
    from echoweave.export.pipeline import load_checkpoint_model, load_dataset

    model, meta, folder = load_checkpoint_model(checkpoint)
    if not model.streams_per_frame:
        raise SystemExit(f"{folder}: the model has no embed_frame/classify_window split to measure")
    spec = PreprocessSpec(**meta["preprocessing"])
    store = load_dataset(meta, folder)
    stride = model.cfg.frame_stride
    calib = calibration_set(store, meta, spec, model.frames, calib_clips, where=str(folder), stride=stride)
    eval_windows = int((meta["train"].get("data") or {}).get("eval_windows", 4))
    held = held_out_set(store, meta, spec, model.frames, eval_windows, stride=stride)
    calib_frames = torch.from_numpy(calib.windows.reshape(-1, *calib.windows.shape[2:]).copy())
    windows = torch.from_numpy(held.windows.copy())
    frames = windows.reshape(-1, *windows.shape[2:])
    labels = torch.as_tensor(held.labels)
    modules = model.method_modules()
    embed, head = modules["embed_frame"].eval(), modules["classify_window"].eval()
    n, t = len(windows), model.frames
    with torch.no_grad():
        ref = torch.cat([embed(frames[i:i + 64]) for i in range(0, len(frames), 64)])
        ref_logits = head(ref.reshape(n, t, -1))
    whole = ef.whole_quantized_types(model)

    def run(name: str, fp32: re.Pattern | None) -> dict:
        quantizer = ef.int8_quantizer(whole)
        scope = getattr(quantizer, "filter_fn", None)

        def keep(node) -> bool:  # False: left fp32. Weights/constants carry no module stack.
            paths = [p for p, _ in (node.meta.get("nn_module_stack") or {}).values()]
            if fp32 is not None and node.op == "call_function" and any(fp32.search(p) for p in paths):
                return False
            return scope(node) if scope else True

        quantizer.set_filter_function(keep)
        start = time.perf_counter()
        graph = torch.export.export(embed, (calib_frames[:1],)).module()
        ef.fold_constant_linears(graph)
        prepared = prepare_pt2e(graph, quantizer)
        with torch.no_grad():
            for i in range(len(calib_frames)):
                prepared(calib_frames[i:i + 1])
            converted = convert_pt2e(prepared)
            out = torch.cat([converted(frames[i:i + 1]) for i in range(len(frames))])
            logits = head(out.reshape(n, t, -1))
        row = {"setting": name, "embed_sqnr_db": round(_sqnr(ref, out), 2),
               "contrast_sqnr_db": round(_sqnr(_contrast(ref, n, t), _contrast(out, n, t)), 2),
               "logit_sqnr_db": round(_sqnr(ref_logits, logits), 2),
               "agreement": round(float((logits.argmax(1) == ref_logits.argmax(1)).float().mean()), 4),
               "accuracy": round(float((logits.argmax(1) == labels).float().mean()), 4),
               "seconds": round(time.perf_counter() - start, 1)}
        print(json.dumps(row), flush=True)
        return row

    patterns = list(keep_fp32)
    if per_block:
        container = next((m for m in model.backbone.children() if len(list(m.children())) > 1), None)
        if container is not None:
            prefix = next(p for p, m in model.backbone.named_children() if m is container)
            patterns += [rf"backbone\.{prefix}\.{name}$" for name, _ in container.named_children()]
    rows = [run("all int8", None)] + [run(f"fp32: {p}", re.compile(p)) for p in patterns]
    return {"checkpoint": str(folder), "model": meta["model"], "held_out_windows": n, "frames": t,
            "calibration_frames": len(calib_frames),
            "eager_accuracy": round(float((ref_logits.argmax(1) == labels).float().mean()), 4),
            "quantizer": "ExecuTorch XNNPACKQuantizer as echoweave.export.executorch_format.int8_quantizer",
            "rows": rows}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--keep_fp32", action="append", default=[], help="regex over module paths left fp32")
    parser.add_argument("--per_block", action="store_true", help="one setting per backbone block left fp32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="JSON report (else printed only)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = measure(args.checkpoint, args.keep_fp32, args.per_block)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
