"""Run exported artifacts here and compare them with eager PyTorch on held-out clips.

Runners (registered in `echoweave.export.formats.CONVERTERS`) share one signature::

    run_artifact(folder, record, method, inputs: list[np.ndarray]) -> np.ndarray  # first output

For every artifact that can run on this host the report holds, on held-out windows: top-1
agreement with eager fp32, max/mean absolute logit difference, accuracy of the artifact and of
eager, and the streaming check (``classify_window(stack(embed_frame(f_t)))`` vs eager
``forward``). Written as ``parity.json`` and ``parity.md``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from echoweave.export.formats import CONVERTERS, ArtifactRecord, ExportError, load_runner

# Loaded programs/sessions, keyed by (file, method): a parity run calls each method hundreds of times.
_CACHE: dict[tuple[str, str], Any] = {}


def clear_cache() -> None:
    """Forget loaded programs/sessions (call after the files moved or changed)."""
    _CACHE.clear()


def _method_file(folder, record: ArtifactRecord | dict, method: str) -> tuple[str, str]:
    methods = record.methods if isinstance(record, ArtifactRecord) else record["methods"]
    return str(Path(folder) / methods[method]["file"]), methods[method]["entry"]


def run_executorch(folder, record, method: str, inputs: list[np.ndarray]) -> np.ndarray:
    """Execute one method of a `.pte` with `executorch.runtime.Runtime`."""
    import torch

    path, entry = _method_file(folder, record, method)
    key = (path, entry)
    if key not in _CACHE:
        from executorch.runtime import Runtime

        program = Runtime.get().load_program(path)
        _CACHE[key] = (program, program.load_method(entry))  # keep the program alive with its method
    # np.array copies: views like ``window[None]`` carry stride 0, which ExecuTorch rejects.
    out = _CACHE[key][1].execute([torch.from_numpy(np.array(x, dtype=np.float32, copy=True)) for x in inputs])
    return out[0].numpy()


def run_onnx(folder, record, method: str, inputs: list[np.ndarray]) -> np.ndarray:
    """Run one method's `.onnx` graph with ONNX Runtime (CPU provider)."""
    path, _ = _method_file(folder, record, method)
    key = (path, method)
    if key not in _CACHE:
        from echoweave.export.onnx_format import session

        sess = session(path)
        _CACHE[key] = (sess, [i.name for i in sess.get_inputs()])
    sess, names = _CACHE[key]
    return sess.run(None, dict(zip(names, inputs)))[0]


def run_litert(folder, record, method: str, inputs: list[np.ndarray]) -> np.ndarray:
    """Run one signature of a `.tflite` with `ai_edge_litert` (``tflite_runtime`` as fallback)."""
    path, entry = _method_file(folder, record, method)
    key = (path, entry)
    if key not in _CACHE:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # an edge install without ai-edge-litert
            from tflite_runtime.interpreter import Interpreter
        interp = Interpreter(model_path=path)
        runner = interp.get_signature_runner(entry)
        names = sorted(runner.get_input_details())
        outs = sorted(runner.get_output_details())
        _CACHE[key] = (interp, runner, names, outs)
    _, runner, names, outs = _CACHE[key]
    result = runner(**dict(zip(names, [np.ascontiguousarray(x) for x in inputs])))
    return np.asarray(result[outs[0]])


def run_artifact(folder, record, method: str, inputs: list[np.ndarray]) -> np.ndarray:
    """Run ``method`` of an artifact (record or manifest entry) in ``folder`` on this host.

    Raises:
        ExportError: the format has no runner on this host (e.g. Core ML needs macOS).
    """
    fmt = record.format if isinstance(record, ArtifactRecord) else record["format"]
    runner = load_runner(fmt)
    if runner is None:
        raise ExportError(f"{fmt}: cannot run here: {CONVERTERS[fmt].no_runner_reason}")
    return runner(folder, record, method, inputs)


def artifact_logits(folder, record, windows: np.ndarray, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """``(forward logits (N, K), streaming logits (N, K))`` of an artifact on windows ``(N, T, C, S, S)``."""
    fwd, stream = [], []
    for window in windows:
        fwd.append(run_artifact(folder, record, "forward", [window[None]])[0])  # (K,)
        feats = [run_artifact(folder, record, "embed_frame", [frame[None]]) for frame in window]  # T x (1, D)
        stream.append(run_artifact(folder, record, "classify_window", [np.stack(feats, axis=1)])[0])  # (K,)
        if progress is not None:
            progress.update(1)
    return np.stack(fwd), np.stack(stream)


def compare_logits(logits: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Agreement and error of ``logits`` against ``reference`` (both ``(N, K)``)."""
    diff = np.abs(logits.astype(np.float64) - reference.astype(np.float64))
    pred, ref = logits.argmax(1), reference.argmax(1)
    return {"n": int(len(labels)), "top1_agreement": float(np.mean(pred == ref)),
            "max_abs_logit_diff": float(diff.max()), "mean_abs_logit_diff": float(diff.mean()),
            "accuracy": float(np.mean(pred == labels)), "eager_accuracy": float(np.mean(ref == labels)),
            "disagreements": int(np.sum(pred != ref))}


def parity_entry(folder, record: ArtifactRecord, windows: np.ndarray, labels: np.ndarray,
                 eager_logits: np.ndarray, progress=None) -> dict[str, Any]:
    """The parity report row of one artifact (runs it on every held-out window)."""
    fwd, stream = artifact_logits(folder, record, windows, progress)
    row = {"id": record.id, "format": record.format, "backend": record.backend, "precision": record.precision,
           "ran": True, **compare_logits(fwd, eager_logits, labels),
           "streaming": compare_logits(stream, eager_logits, labels),
           "streaming_vs_forward_max_abs": float(np.abs(stream - fwd).max())}
    row["accuracy_drop_pp"] = 100.0 * (row["eager_accuracy"] - row["accuracy"])
    delegation = record.extra.get("delegation")
    if delegation:
        row["delegation"] = {m: {"delegated_share": d["delegated_share"], "ops_outside": d["ops_outside"]}
                             for m, d in delegation.items()}
    return row


def not_run_entry(record: ArtifactRecord) -> dict[str, Any]:
    """Parity row of an artifact that cannot run on this host."""
    return {"id": record.id, "format": record.format, "backend": record.backend, "precision": record.precision,
            "ran": False, "reason": CONVERTERS[record.format].no_runner_reason}


def summary(rows: list[dict]) -> dict[str, dict]:
    """Per-artifact numbers for the manifest's ``parity`` section."""
    keys = ("top1_agreement", "max_abs_logit_diff", "mean_abs_logit_diff", "accuracy", "eager_accuracy",
            "accuracy_drop_pp")
    out = {}
    for row in rows:
        if row["ran"]:
            out[row["id"]] = {k: row[k] for k in keys}
            out[row["id"]]["streaming_top1_agreement"] = row["streaming"]["top1_agreement"]
            out[row["id"]]["streaming_max_abs_logit_diff"] = row["streaming"]["max_abs_logit_diff"]
        else:
            out[row["id"]] = {"ran": False, "reason": row["reason"]}
    return out


def parity_markdown(report: dict) -> str:
    """``parity.md``: one table row per artifact, then delegation and targets."""
    lines = [f"# Parity of `{report['model_id']}` artifacts vs eager PyTorch fp32", "",
             f"Held-out data: {report['held_out']['windows']} windows of {report['held_out']['clips']} clips "
             f"from patients {report['held_out']['patients']} (never seen in training or calibration).", "",
             "| artifact | top-1 agreement | max abs logit diff | mean abs diff | accuracy | eager accuracy | "
             "streaming agreement | streaming max diff |",
             "|---|---|---|---|---|---|---|---|"]
    for row in report["artifacts"]:
        if not row["ran"]:
            lines.append(f"| {row['id']} | not run: {row['reason']} | | | | | | |")
            continue
        s = row["streaming"]
        lines.append(f"| {row['id']} | {row['top1_agreement']:.1%} | {row['max_abs_logit_diff']:.2e} | "
                     f"{row['mean_abs_logit_diff']:.2e} | {row['accuracy']:.1%} | {row['eager_accuracy']:.1%} | "
                     f"{s['top1_agreement']:.1%} | {s['max_abs_logit_diff']:.2e} |")
    delegated = [r for r in report["artifacts"] if r.get("delegation")]
    if delegated:
        lines += ["", "## Delegation (ExecuTorch XNNPACK)", "", "| artifact | method | delegated share | ops left outside |",
                  "|---|---|---|---|"]
        for row in delegated:
            for method, d in row["delegation"].items():
                outside = ", ".join(f"{k} x{v}" for k, v in d["ops_outside"].items()) or "none"
                lines.append(f"| {row['id']} | {method} | {d['delegated_share']:.1%} | {outside} |")
    lines += ["", "## Targets", "", "- fp32: 100% top-1 agreement.",
              "- int8: accuracy within 1 percentage point of eager fp32."]
    for row in report["artifacts"]:
        if row["ran"]:
            target = row["top1_agreement"] == 1.0 if row["precision"] == "fp32" else row["accuracy_drop_pp"] <= 1.0
            lines.append(f"  - {row['id']}: {'met' if target else 'MISSED'} (agreement {row['top1_agreement']:.1%}, "
                         f"accuracy drop {row['accuracy_drop_pp']:+.1f} pp)")
    return "\n".join(lines) + "\n"


def write_parity(folder, report: dict) -> None:
    """Write ``parity.json`` and ``parity.md`` into ``folder``."""
    folder = Path(folder)
    (folder / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
    (folder / "parity.md").write_text(parity_markdown(report))
