"""`MODEL_CARD.md` of an export: intended use, training data, classes, held-out metrics with
confidence intervals, parity of every artifact, and known limitations."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def trained_on_phantom(meta: dict) -> bool:
    """True when the checkpoint's data is the synthetic phantom (generated, or written by `data synth`)."""
    data = (meta.get("train") or {}).get("data") or {}
    path = str(data.get("path", ""))
    if path == "phantom":
        return True
    # `echoweave data synth` writes OUT/phantom_summary.json beside the layout it generates.
    return path != "" and (Path(path) / "phantom_summary.json").is_file()


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def metrics_lines(metrics: dict[str, Any]) -> list[str]:
    """Markdown table of clip- and window-level held-out metrics."""
    lines = ["| level | n | accuracy [95% CI] | macro F1 | macro precision | macro recall |", "|---|---|---|---|---|---|"]
    for level in ("window", "clip"):
        m = metrics.get(level)
        if not m:
            continue
        lo, hi = m["accuracy_ci95"]
        lines.append(f"| {level} | {m['n']} | {_pct(m['accuracy'])} [{_pct(lo)}-{_pct(hi)}] | {m['f1_macro']:.3f} | "
                     f"{m['precision_macro']:.3f} | {m['recall_macro']:.3f} |")
    return lines


def model_card(model_id: str, meta: dict, manifest: dict, metrics: dict, parity: dict) -> str:
    """The model card text.

    Args:
        model_id: the export's model id.
        meta: checkpoint metadata.
        manifest: the export manifest (artifacts, skipped combinations).
        metrics: ``{"window": classification_metrics, "clip": classification_metrics}`` on held-out clips.
        parity: the parity report.
    """
    cfg = meta["model"]
    data = (meta.get("train") or {}).get("data") or {}
    phantom = trained_on_phantom(meta)
    lines = [f"# Model card: `{model_id}`", "",
             f"{cfg['name']} model, backbone {cfg['backbone']}, {cfg['frames']} frames of "
             f"{cfg['input_size']}x{cfg['input_size']} grayscale pixels per window, {cfg['num_classes']} classes. "
             f"Checkpoint epoch {meta.get('epoch')}, stage {meta.get('stage')}.", "",
             "## Intended use", "",
             "Echocardiogram **view classification** of short ultrasound clips: the first step of a point-of-care "
             "workflow (which standard view is on screen), e.g. to guide acquisition or route clips to view-specific "
             "analysis. It is **not a diagnosis** and says nothing about cardiac function or disease. Predictions "
             f"with confidence below {manifest['uncertain_threshold']} are reported as \"uncertain view\".", "",
             "## Training data", ""]
    if phantom:
        lines += ["> **Warning: this model was trained on the synthetic echo phantom**, not on patient data. "
                  "Its numbers describe how well it separates generated B-mode-like clips; they say nothing about "
                  "real echocardiograms. Do not use it on patients.", ""]
    lines += [f"- Dataset: `{data.get('path', 'unknown')}` (class set {data.get('class_set', '?')}).",
              f"- Split by patient; held-out patients: {', '.join(map(str, meta.get('split', {}).get('val_patients', [])))}.",
              "", "## Classes", ""]
    lines += [f"{c['id']}. {c['name']}" for c in manifest["classes"]]
    lines += ["", "## Held-out metrics (eager PyTorch fp32)", "",
              "Computed at export on windows of the held-out patients' clips; clip level averages each clip's "
              "window probabilities. 95% intervals are exact (Clopper-Pearson).", ""]
    lines += metrics_lines(metrics)
    lines += ["", "## Exported artifacts and parity", "",
              "| artifact | files | top-1 agreement with eager | accuracy | max abs logit diff |", "|---|---|---|---|---|"]
    rows = {r["id"]: r for r in parity.get("artifacts", [])}
    for art in manifest["artifacts"]:
        row = rows.get(art["id"], {})
        size = art["files"][0]["bytes"] / 1e6  # the shipped file; .bpte/reference files are for checks
        if row.get("ran"):
            lines.append(f"| {art['id']} | {size:.2f} MB | {_pct(row['top1_agreement'])} | {_pct(row['accuracy'])} | "
                         f"{row['max_abs_logit_diff']:.2e} |")
        else:
            lines.append(f"| {art['id']} | {size:.2f} MB | not run here: {row.get('reason', '')} | | |")
    if manifest.get("skipped"):
        lines += ["", "Not exported:"] + [f"- {s['format']} {s['precision']}: {s['reason']}" for s in manifest["skipped"]]
    lines += ["", "## Known limitations", "",
              "- Trained and evaluated on the data above only; other scanners, probes, presets and populations "
              "(adult vs. neonatal) may shift the accuracy without warning.",
              f"- A window is {cfg['frames']} consecutive frames; views that differ only in motion need the full window.",
              "- The sector mask and preprocessing must be applied exactly as in the manifest; other crops or "
              "resizing change predictions.",
              "- int8 artifacts are calibrated on training clips; accuracy on very different images may drop more than "
              "the parity table shows.",
              "- Small held-out sets give wide confidence intervals; read the interval, not the point estimate."]
    if phantom:
        lines.append("- Synthetic training data: not validated on any real echocardiogram.")
    return "\n".join(lines) + "\n"
