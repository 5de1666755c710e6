"""Slow export tests: ExecuTorch int8 on the tiny checkpoint, and the full ResNet-50 TFW at 224
(random weights) through ExecuTorch and ONNX, reporting sizes and parity.

    .venv/bin/python -m pytest tests/test_export_slow.py -q -m slow -s
"""
from __future__ import annotations

import json

import pytest
import torch

from echoweave.edge.manifest import find_artifact, read_manifest, verify_artifact_files

pytestmark = pytest.mark.slow


def test_executorch_int8_tiny_runs_and_reports_agreement(tiny_checkpoint, tmp_path):
    from echoweave.export.pipeline import export_checkpoint

    torch.set_num_threads(2)
    result = export_checkpoint(tiny_checkpoint, tmp_path, formats=["executorch"], precisions=["int8"],
                               calib_clips=8, show_progress=False)
    art = find_artifact(read_manifest(result.folder), "executorch", "int8")[0]
    verify_artifact_files(result.folder, art)
    assert art["files"][0]["path"] == "tfw_tiny_xnnpack_q8.pte"
    row = result.parity["artifacts"][0]
    assert row["ran"] and 0.0 <= row["top1_agreement"] <= 1.0 and row["max_abs_logit_diff"] < 0.5
    # The quantized graph is still almost entirely inside XNNPACK (q/dq pairs fold into it).
    for method, d in art["extra"]["delegation"].items():
        assert d["delegated_share"] > 0.8, (method, d["ops_outside"])
        assert not [op for op in d["ops_outside"] if "gru" in op.lower()]


def resnet50_checkpoint(tiny_checkpoint, run_dir):
    """A checkpoint of a freshly built (random) TFW ResNet-50 at 224, on the tiny phantom data."""
    from echoweave.train.engine.checkpoint import load_checkpoint, save_checkpoint
    from echoweave.train.models import ModelConfig, build_model

    _, meta, _ = load_checkpoint(tiny_checkpoint)
    torch.manual_seed(0)
    cfg = ModelConfig(name="tfw", backbone="resnet50", num_classes=12)
    model = build_model(cfg).eval()
    meta = {**meta, "model": json.loads(json.dumps(cfg.to_dict())),
            "preprocessing": {**meta["preprocessing"], "resize": 232, "crop": 224}}
    return save_checkpoint(run_dir, 0, model, meta)


def test_resnet50_tfw_export_sizes_and_parity(tiny_checkpoint, tmp_path):
    from echoweave.export.pipeline import export_checkpoint

    torch.set_num_threads(2)
    ckpt = resnet50_checkpoint(tiny_checkpoint, tmp_path / "run")
    result = export_checkpoint(ckpt, tmp_path / "art", formats=["executorch", "onnx"], precisions=["fp32", "int8"],
                               calib_clips=8, parity_clips=4, show_progress=True)
    manifest = read_manifest(result.folder)
    assert manifest["model_id"] == "tfw_r50"
    sizes = {a["id"]: a["files"][0]["bytes"] / 1e6 for a in manifest["artifacts"]}
    print("\nResNet-50 TFW artifact sizes (MB):", json.dumps(sizes, indent=1))
    print("timings (s):", json.dumps(result.timings, indent=1))
    for row in result.parity["artifacts"]:
        print(row["id"], {k: row[k] for k in ("top1_agreement", "max_abs_logit_diff", "accuracy_drop_pp")},
              {m: round(d["delegated_share"], 4) for m, d in row.get("delegation", {}).items()})
    fp32 = {r["id"]: r for r in result.parity["artifacts"]}
    assert fp32["executorch_xnnpack_fp32"]["top1_agreement"] == 1.0
    assert fp32["onnx_cpu_fp32"]["top1_agreement"] == 1.0
    assert sizes["executorch_xnnpack_int8"] <= 35.0
