"""benchmarks/int8_sensitivity.py: ExecuTorch's int8 of embed_frame simulated on held-out windows,
whole and with parts left fp32."""
from __future__ import annotations

import json

import torch

from echoweave.benchmarks.int8_sensitivity import main
from echoweave.train.engine.run import run_training
from tests.helpers.tiny import tiny_config

torch.set_num_threads(1)


def test_leaving_the_backbone_fp32_removes_the_features_rounding_error(tmp_path):
    run = run_training(tiny_config(tmp_path / "run", optim={"epochs": 1},
                                   model={"contrast": "window_mean"}), show_progress=False)
    out = tmp_path / "sens.json"
    main([str(run.checkpoint), "--keep_fp32", r"backbone", "--out", str(out)])
    report = json.loads(out.read_text())
    whole, fp32 = report["rows"]
    assert whole["setting"] == "all int8" and fp32["setting"] == "fp32: backbone"
    assert report["held_out_windows"] > 0 and report["calibration_frames"] > 0
    # int8 features carry rounding error; the contrast of them more (the static part cancels).
    assert 5 < whole["embed_sqnr_db"] < 60 and whole["contrast_sqnr_db"] < whole["embed_sqnr_db"]
    # Left fp32, only fc0 (a linear outside the backbone) still rounds: far closer to eager.
    assert fp32["embed_sqnr_db"] > whole["embed_sqnr_db"] + 6
    assert 0.0 <= whole["agreement"] <= 1.0 and fp32["agreement"] >= whole["agreement"]
