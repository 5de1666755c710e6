"""`echoweave export`: checkpoint -> ``artifacts/<model_id>/`` (ExecuTorch, ONNX, LiteRT, Core ML)
with manifest.json, parity.json/.md and MODEL_CARD.md.

    echoweave export runs/tfw --out artifacts
    echoweave export runs/tfw --out artifacts --formats executorch,onnx --precisions fp32

Light module: torch and the converters are imported inside the function.
"""
from __future__ import annotations

from echoweave.edge.errors import EchoweaveError
from echoweave.edge.formats import default_formats


def _split(value: str, name: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise EchoweaveError(f"--{name} is empty; give a comma-separated list")
    return items


def export(checkpoint: str, out: str = "artifacts", formats: str = ",".join(default_formats()),
           precisions: str = "fp32,int8", calib_clips: int = 32, overwrite: bool = False,
           uncertain_threshold: float = 0.5, model_id: str | None = None, parity_clips: int | None = None,
           threads: int = 0, jobs: int = 0) -> None:
    """Export a trained checkpoint for phones and edge runtimes, verified against eager PyTorch.

    Stages: load checkpoint -> build calibration set (real training clips) -> per format and
    precision: export -> quantize -> lower -> serialize -> verify parity on held-out clips ->
    manifest.json, parity.json, parity.md, MODEL_CARD.md. Everything is built in a staging
    folder and renamed into place, so a failed or interrupted export leaves nothing behind and
    keeps an existing export intact. Unsupported combinations are skipped with their reason.

    Args:
        checkpoint: Run folder, its checkpoints/ folder or one epoch_* checkpoint folder.
        out: Parent folder; the export goes to OUT/<model_id>/.
        formats: Comma-separated formats (rows of the format table, echoweave.edge.formats).
        precisions: Comma-separated precisions: fp32, fp16, int8.
        calib_clips: Training clips used to calibrate int8 (two windows each).
        overwrite: Replace OUT/<model_id> even if it holds a different model.
        uncertain_threshold: Confidence below which the app reports "uncertain view" (manifest).
        model_id: Folder and file-name prefix; default <model>_<backbone tag>, e.g. tfw_r50.
        parity_clips: At most this many held-out clips for parity and metrics (default: all).
        threads: Torch CPU threads for export and eager reference (0 = torch default).
        jobs: Worker processes that run converters side by side (0 = the usable CPUs, at most 2;
            1 = one after the other). Workers run torch on one thread each.
    """
    from echoweave.export.parallel import default_jobs
    from echoweave.export.pipeline import export_checkpoint

    if threads:
        import torch

        torch.set_num_threads(threads)
    result = export_checkpoint(checkpoint, out, formats=_split(formats, "formats"),
                               precisions=_split(precisions, "precisions"), calib_clips=calib_clips,
                               overwrite=overwrite, uncertain_threshold=uncertain_threshold, model_id=model_id,
                               parity_clips=parity_clips, jobs=jobs or default_jobs())
    print(f"\n{result.folder}:")
    for art in result.manifest["artifacts"]:
        size = art["files"][0]["bytes"] / 1e6  # the shipped file (.pte/.onnx/.tflite/.mlpackage)
        par = result.manifest["parity"].get(art["id"], {})
        agree = f"parity {par['verdict']}: SQNR {par['worst_sqnr_db']:.1f} dB, agreement {par['top1_agreement']:.1%}" \
            f" ({par['decisive_windows']} decisive windows)" if "verdict" in par else \
            f"not run here ({par.get('reason', '')})"
        print(f"  {art['id']:<28} {size:8.2f} MB  {agree}")
    for s in result.skipped:
        print(f"  skipped {s['format']} {s['precision']}: {s['reason']}")
