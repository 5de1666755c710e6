"""`echoweave workflow compare`: predicted workflows of full-length scans against their ground truth.

    echoweave data synth --out scans --layout video --scan_s 120 --patients 12 --seed 1
    echoweave classify scans --model artifacts/tfw_tiny --json > tfw.json
    echoweave workflow compare tfw.json,image.json --report docs/workflow.md   # + .json, .png beside it

Light module: the comparison (numpy, scipy, matplotlib) is imported inside the function.
"""
from __future__ import annotations

from pathlib import Path

from echoweave.edge.errors import EchoweaveError


def compare(predictions: str, truth: str | None = None, report: str = "workflow_report.md",
            tolerance_s: float = 1.0, min_iou: float = 0.5, names: str | None = None) -> None:
    """Compare the workflows `echoweave classify --json` predicted for full-length scans with their truth.

    Per model (one prediction file each): per-label duration correlation across scans (Pearson
    and Spearman with p-values; per label, pooled over all scans and labels, and over the labels'
    mean durations), workflow statistics (mean ± sd seconds and share with 95% CI per label;
    view transitions, visits and order per scan), and segment-level precision/recall/F1. A
    predicted segment matches a true one of the same label when both boundaries are within
    --tolerance_s or their IoU is at least --min_iou (one-to-one, greedy by IoU). Labels are
    the views plus ``background``: predicted, the windows below the model's uncertainty
    threshold (classify's default); true, the probe moving between views.

    Args:
        predictions: Comma-separated `echoweave classify SCANS --model M --json` outputs, one per model.
        truth: Folder of the ``<recording stem>.truth.json`` files (default: beside each recording).
        report: Markdown report to write; the JSON report (.json) and the duration scatter plot
            (.png) are written beside it with the same stem.
        tolerance_s: Boundary tolerance in seconds for a segment match.
        min_iou: Intersection over union that also makes a segment match.
        names: Comma-separated row names, one per prediction file (default: each file's model id
            and artifact; two trainings of one architecture share those).
    """
    from echoweave.commands.classify import check_output_file

    files = [p.strip() for p in predictions.split(",") if p.strip()]
    if not files:
        raise EchoweaveError("workflow compare: give one or more prediction files (classify --json outputs)")
    if tolerance_s < 0 or not 0 < min_iou <= 1:
        raise EchoweaveError(f"workflow compare: --tolerance_s must be >= 0 and --min_iou in (0, 1], got "
                             f"{tolerance_s} and {min_iou}")
    labels = None if names is None else [n.strip() for n in names.split(",")]
    if labels is not None and (len(labels) != len(files) or not all(labels) or len(set(labels)) != len(labels)):
        raise EchoweaveError(f"workflow compare: --names needs {len(files)} distinct non-empty names, one per "
                             f"prediction file; got {names!r}")
    md = check_output_file(report, "--report", (".md",), Path(files[0]))
    if truth is not None and not Path(truth).is_dir():
        raise EchoweaveError(f"--truth {truth}: not a folder")
    from echoweave.edge.atomic import write_json_atomic, write_text_atomic
    from echoweave.train.evaluation.workflow import (
        best_model,
        compare_workflows,
        pair_with_truth,
        plot_durations,
        read_predictions,
        workflow_markdown,
    )

    reports = [compare_workflows(pair_with_truth(read_predictions(f), truth), tolerance_s, min_iou) for f in files]
    if labels is not None:
        for r, label in zip(reports, labels):
            r["model"] = label
    models = [r["model"] for r in reports]
    for r, f in zip(reports, files):
        if models.count(r["model"]) > 1:  # the same model twice (two runtimes?): tell them apart by file
            r["model"] = f"{r['model']} ({Path(f).name})"
    png = plot_durations(reports, md.with_suffix(".png"))
    best = best_model(reports)
    write_json_atomic(md.with_suffix(".json"), {"best_model": best["model"], "models": reports}, sort_keys=False)
    write_text_atomic(md, workflow_markdown(reports, png.name))
    for r in sorted(reports, key=lambda r: r is not best):
        d, s = r["durations"]["pooled"], r["segments"]["views"]
        r_txt = "n/a" if d["pearson_r"] is None else f"{d['pearson_r']:.3f} (p {d['pearson_p']:.2g})"
        rho_txt = "n/a" if d["spearman_rho"] is None else f"{d['spearman_rho']:.3f} (p {d['spearman_p']:.2g})"
        f1 = "n/a" if s["f1"] is None else f"{s['f1']:.2f}"
        print(f"{r['model']}: {r['scans']} scans, pooled duration r {r_txt}, rho {rho_txt}, view segment F1 {f1}, "
              f"target {'met' if r['target']['met'] else 'not met'}")
    print(f"report: {md} (+ {md.with_suffix('.json').name}, {png.name})")
