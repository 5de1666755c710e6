"""Parity: every staged artifact, opened the way an app opens it, against eager PyTorch.

Each artifact is opened with `echoweave.edge.classifier.open_artifact` (the runtime adapter and
`Classifier` that ``echoweave.edge.load`` returns to an app: its input casts, int8 I/O, derived
inputs and method selection included) and run on held-out windows. There is no second runner
here: a bug in an adapter fails parity.

For every artifact that can run on this host the report holds, on held-out windows: top-1
agreement with eager fp32, max/mean absolute logit difference, accuracy of the artifact and of
eager, and the streaming check (``classify_window(stack(embed_frame(f_t)))`` vs eager
``forward``; a window-only model streams by recomputing ``forward``, so its streaming row is its
``forward``). Written as ``parity.json`` and ``parity.md``.

The verdict judges the numbers before the labels. Per method (``forward``, ``embed_frame``,
``classify_window`` on eager features, and streaming) it measures the SQNR against eager,
``10 log10(sum ref^2 / sum (x - ref)^2)`` dB, with the relative error ``||x - ref|| / ||ref||``;
each must reach `SQNR_TARGET_DB` for the precision. Top-1 agreement only counts on *decisive*
windows, whose eager margin (top-1 minus top-2 logit) exceeds twice the artifact's RMS logit
error: on a barely trained model every margin is tiny, any noise flips the arg-max, and
agreement says nothing. With fewer than `MIN_DECISIVE` decisive windows the verdict is
``inconclusive`` (never ``met``); ``met`` needs the numerics, the decisive agreement and, for
reduced precisions, an accuracy drop within 1 percentage point.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from echoweave.edge.errors import EchoweaveError


def runtime_for(artifact: dict) -> tuple[str | None, str]:
    """``(runtime name, "")`` of the first runtime that reads the artifact's format and can run
    here, or ``(None, why not)``."""
    from echoweave.edge.runtime.base import RUNTIMES, RuntimeNotAvailable, require_runtime

    reasons = []
    for name, info in RUNTIMES.items():
        if info.format != artifact["format"]:
            continue
        try:
            require_runtime(name)
            return name, ""
        except RuntimeNotAvailable as exc:
            reasons.append(str(exc))
    return None, "; ".join(reasons) or f"no runtime reads format {artifact['format']!r}"


def artifact_outputs(clf, windows: np.ndarray, eager_features: np.ndarray | None = None,
                     progress=None) -> dict[str, np.ndarray]:
    """Every declared method of an opened artifact (`echoweave.edge.Classifier`) on windows ``(N, T, C, S, S)``.

    Returns:
        ``{"forward": (N, K), "streaming": (N, K)[, "embed_frame": (N, T, D), "classify_window":
        (N, K) on ``eager_features`` (N, T, D)]}``; streaming is ``classify_window`` of the
        artifact's own ``embed_frame`` features, or ``forward`` for a window-only model.
    """
    fwd, stream, feats_all, head = [], [], [], []
    for i, window in enumerate(windows):
        fwd.append(clf.forward_window(window))  # (K,), derived inputs computed by the edge
        if clf.per_frame:
            feats = clf.embed(window)  # (T, D), one embed_frame call per frame
            feats_all.append(feats)
            stream.append(clf.classify_features(feats))  # (K,)
            if eager_features is not None:
                head.append(clf.classify_features(eager_features[i]))
        if progress is not None:
            progress.update(1)
    out = {"forward": np.stack(fwd), "streaming": np.stack(stream) if stream else np.stack(fwd)}
    if feats_all:
        out["embed_frame"] = np.stack(feats_all)
    if head:
        out["classify_window"] = np.stack(head)
    return out


#: SQNR (dB) every method must reach against eager fp32; 40 dB is a relative error of 1 %,
#: 15 dB one of 18 % (int8 post-training quantization of the whole network end to end).
SQNR_TARGET_DB = {"fp32": 40.0, "fp16": 30.0, "int8": 15.0}
#: Fewer decisive windows than this and top-1 agreement is not informative.
MIN_DECISIVE = 10
SQNR_CAP_DB = 200.0  # reported for outputs equal to eager (no error to divide by)


def numerics(x: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """``{"sqnr_db", "rel_error"}`` of ``x`` against ``reference`` (any equal shapes)."""
    x, ref = np.asarray(x, np.float64).ravel(), np.asarray(reference, np.float64).ravel()
    noise, signal = float(np.sum((x - ref) ** 2)), float(np.sum(ref ** 2))
    if noise == 0:
        return {"sqnr_db": SQNR_CAP_DB, "rel_error": 0.0}
    if signal == 0 or not np.isfinite(noise):  # eager all zeros, or the artifact gave inf/NaN
        return {"sqnr_db": -SQNR_CAP_DB, "rel_error": None}
    rel = float(np.sqrt(noise / signal))
    return {"sqnr_db": round(float(np.clip(-20.0 * np.log10(rel), -SQNR_CAP_DB, SQNR_CAP_DB)), 3), "rel_error": rel}


def eager_margins(reference: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 logit of each eager window ``(N,)``."""
    top2 = np.sort(np.asarray(reference, np.float64), axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def judge(row: dict, reference: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
    """The verdict of one parity row (see the module docstring): ``{"verdict", "why", ...}``."""
    target = SQNR_TARGET_DB[row["precision"]]
    worst_method, worst = min(((m, v["sqnr_db"]) for m, v in row["methods"].items()), key=lambda kv: kv[1])
    rms_error = float(np.sqrt(np.mean((np.asarray(logits, np.float64) - reference) ** 2)))
    decisive = eager_margins(reference) > 2.0 * rms_error
    n_decisive = int(decisive.sum())
    agree = logits.argmax(1) == reference.argmax(1)
    decisive_agreement = float(agree[decisive].mean()) if n_decisive else None
    numerics_ok = worst >= target
    informative = n_decisive >= MIN_DECISIVE
    agreement_ok = informative and (decisive_agreement == 1.0 if row["precision"] == "fp32" else
                                    decisive_agreement >= 0.95 and row["accuracy_drop_pp"] <= 1.0)
    out = {"sqnr_target_db": target, "worst_method": worst_method, "worst_sqnr_db": worst,
           "rms_logit_error": rms_error, "decisive_windows": n_decisive,
           "decisive_agreement": decisive_agreement, "agreement_informative": informative,
           "median_eager_margin": float(np.median(eager_margins(reference)))}
    if not numerics_ok:
        out["verdict"] = "MISSED"
        out["why"] = f"{worst_method} SQNR {worst:.1f} dB < {target:.0f} dB"
    elif not informative:
        out["verdict"] = "inconclusive"
        out["why"] = (f"numerics met (worst SQNR {worst:.1f} dB, {worst_method}); eager top-1 margins are too small "
                      f"for agreement to be informative: {n_decisive} of {len(agree)} windows have a margin above "
                      f"twice the RMS logit error {rms_error:.2g} (need {MIN_DECISIVE})")
    elif not agreement_ok or float(agree.mean()) < 0.9:
        # Name every condition that failed: a near-tied model can agree on all of its decisive
        # windows and still flip more than 10 % of the rest.
        needed = 1.0 if row["precision"] == "fp32" else 0.95
        failed = ([f"agreement {decisive_agreement:.1%} on {n_decisive} decisive windows < {needed:.0%}"]
                  if decisive_agreement < needed else [])
        failed += ([f"accuracy drop {row['accuracy_drop_pp']:+.1f} pp > 1.0 pp"]
                   if row["precision"] != "fp32" and row["accuracy_drop_pp"] > 1.0 else [])
        failed += ([f"overall agreement {float(agree.mean()):.1%} < 90% ({int((~agree).sum())} of {len(agree)} "
                    f"windows flipped, {int((~agree & ~decisive).sum())} of them within twice the RMS logit "
                    f"error)"] if float(agree.mean()) < 0.9 else [])
        out["verdict"] = "MISSED"
        out["why"] = "; ".join(failed) + (f" (decisive agreement {decisive_agreement:.1%} on {n_decisive} windows)"
                                          if decisive_agreement >= needed else "")
    else:
        out["verdict"] = "met"
        out["why"] = (f"worst SQNR {worst:.1f} dB ({worst_method}); agreement {decisive_agreement:.1%} on "
                      f"{n_decisive} decisive windows, accuracy drop {row['accuracy_drop_pp']:+.1f} pp")
    return out


def compare_logits(logits: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Agreement and error of ``logits`` against ``reference`` (both ``(N, K)``)."""
    diff = np.abs(logits.astype(np.float64) - reference.astype(np.float64))
    pred, ref = logits.argmax(1), reference.argmax(1)
    return {"n": int(len(labels)), "top1_agreement": float(np.mean(pred == ref)),
            "max_abs_logit_diff": float(diff.max()), "mean_abs_logit_diff": float(diff.mean()),
            "accuracy": float(np.mean(pred == labels)), "eager_accuracy": float(np.mean(ref == labels)),
            "disagreements": int(np.sum(pred != ref))}


def parity_entry(folder, manifest: dict, artifact: dict, windows: np.ndarray, labels: np.ndarray,
                 eager_logits: np.ndarray, progress=None, eager_features: np.ndarray | None = None) -> dict[str, Any]:
    """The parity report row of one artifact: opened through `echoweave.edge` and run on every
    held-out window (a "not run" row, with the reason, when no runtime for it works here).

    Args:
        folder: the (staging) folder holding the artifact's files.
        manifest: the manifest describing them (the artifact is one of its entries).
        eager_features: eager ``embed_frame`` features ``(N, T, D)`` of the windows; with them the
            row also judges ``embed_frame`` and ``classify_window`` on their own.
    """
    from echoweave.edge.classifier import open_artifact

    runtime, why = runtime_for(artifact)
    if runtime is None:
        return not_run_entry(artifact, why)
    try:
        clf = open_artifact(folder, manifest, artifact, runtime)
    except EchoweaveError as exc:
        raise EchoweaveError(f"parity: {exc}") from exc
    try:
        outs = artifact_outputs(clf, windows, eager_features, progress)
    finally:
        clf.close()
    fwd, stream = outs["forward"], outs["streaming"]
    row = {"id": artifact["id"], "format": artifact["format"], "backend": artifact["backend"],
           "precision": artifact["precision"], "ran": True, "runtime": runtime, "methods_run": list(clf.methods),
           **compare_logits(fwd, eager_logits, labels),
           "streaming": compare_logits(stream, eager_logits, labels),
           "streaming_vs_forward_max_abs": float(np.abs(stream - fwd).max())}
    row["accuracy_drop_pp"] = 100.0 * (row["eager_accuracy"] - row["accuracy"])
    row["methods"] = {"forward": numerics(fwd, eager_logits), "streaming": numerics(stream, eager_logits)}
    if eager_features is not None and "embed_frame" in outs:
        row["methods"]["embed_frame"] = numerics(outs["embed_frame"], eager_features)
        row["methods"]["classify_window"] = numerics(outs["classify_window"], eager_logits)
    row.update(judge(row, np.asarray(eager_logits, np.float64), fwd))
    delegation = (artifact.get("extra") or {}).get("delegation")
    if delegation:
        row["delegation"] = {m: {"delegated_share": d["delegated_share"], "ops_outside": d["ops_outside"]}
                             for m, d in delegation.items()}
    return row


def not_run_entry(artifact: dict, reason: str) -> dict[str, Any]:
    """Parity row of an artifact that cannot run on this host."""
    return {"id": artifact["id"], "format": artifact["format"], "backend": artifact["backend"],
            "precision": artifact["precision"], "ran": False, "reason": reason}


def summary(rows: list[dict]) -> dict[str, dict]:
    """Per-artifact numbers for the manifest's ``parity`` section."""
    keys = ("top1_agreement", "max_abs_logit_diff", "mean_abs_logit_diff", "accuracy", "eager_accuracy",
            "accuracy_drop_pp", "verdict", "worst_sqnr_db", "decisive_windows")
    out = {}
    for row in rows:
        if row["ran"]:
            out[row["id"]] = {k: row[k] for k in keys}
            out[row["id"]]["streaming_top1_agreement"] = row["streaming"]["top1_agreement"]
            out[row["id"]]["streaming_max_abs_logit_diff"] = row["streaming"]["max_abs_logit_diff"]
        else:
            out[row["id"]] = {"ran": False, "reason": row["reason"]}
    return out


def _numerics_cell(n: dict | None) -> str:
    if n is None:
        return ""
    rel = "n/a" if n["rel_error"] is None else f"{n['rel_error']:.1e}"
    return f"{n['sqnr_db']:.1f} ({rel})"


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
    ran = [r for r in report["artifacts"] if r["ran"] and "methods" in r]
    if ran:
        names = [m for m in ("forward", "embed_frame", "classify_window", "streaming") if m in ran[0]["methods"]]
        lines += ["", "## Numerics per method (SQNR vs eager, dB; relative error)", "",
                  "| artifact | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for row in ran:
            cells = [_numerics_cell(row["methods"].get(m)) for m in names]
            lines.append(f"| {row['id']} | " + " | ".join(cells) + " |")
    targets = ", ".join(f"{p} {t:.0f} dB" for p, t in SQNR_TARGET_DB.items())
    lines += ["", "## Targets", "", f"- every method's SQNR against eager: {targets}.",
              f"- top-1 agreement on decisive windows (eager margin above twice the artifact's RMS logit error; "
              f"at least {MIN_DECISIVE} of them, else the verdict is inconclusive): fp32 100%; fp16/int8 95% and "
              "accuracy within 1 percentage point of eager fp32."]
    for row in report["artifacts"]:
        if row["ran"] and "verdict" in row:
            lines.append(f"  - {row['id']}: {row['verdict']} ({row['why']}; overall agreement "
                         f"{row['top1_agreement']:.1%})")
    return "\n".join(lines) + "\n"


def write_parity(folder, report: dict) -> None:
    """Write ``parity.json`` and ``parity.md`` into ``folder``."""
    from echoweave.edge.atomic import write_text_atomic

    folder = Path(folder)
    write_text_atomic(folder / "parity.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(folder / "parity.md", parity_markdown(report))
