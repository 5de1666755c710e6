"""The GPU training-throughput check runs its code paths on the CPU (tiny backbone and sizes):
every setting (fp32, bf16 + channels-last, one-process DDP, torch.compile), the report, the budget."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")


def test_every_setting_runs_on_cpu_and_is_reported(tmp_path):
    from echoweave.benchmarks.train_throughput import SETTINGS, main

    out = tmp_path / "tt.json"
    report = main(["--device", "cpu", "--tiny", "--threads", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    rows = {r["setting"]: r for r in report["settings"]}
    assert list(rows) == list(SETTINGS) and not report["skipped"]
    for r in rows.values():
        assert r["clips_per_s"] > 0 and r["steps"] == 2 and r["batch_clips"] == 2 and r["input_size"] == 32
        assert r["frames_per_s"] == pytest.approx(r["clips_per_s"] * r["frames_per_clip"])
    assert rows["fp32"]["amp"] == "fp32" and not rows["fp32"]["channels_last"] and rows["fp32"]["speedup_vs_fp32"] == 1
    assert rows["bf16_cl"]["amp"] == "bf16" and rows["bf16_cl"]["channels_last"]
    assert rows["bf16_cl_ddp1"]["ddp"] == "DistributedDataParallel, 1 process (gloo)"
    assert rows["bf16_cl_compile"]["compile"] == "eager"  # the CPU check takes dynamo's path without inductor
    assert report["model"]["backbone"] == "tiny" and report["device"]["type"] == "cpu"
    assert not torch.distributed.is_initialized()  # the one-process group is torn down


def test_the_budget_skips_what_would_overrun():
    from echoweave.benchmarks.train_throughput import main

    report = main(["--device", "cpu", "--tiny", "--threads", "1", "--settings", "fp32,bf16_cl_compile", "--budget_s", "1"])
    assert [r["setting"] for r in report["settings"]] == ["fp32"]
    assert report["skipped"][0]["setting"] == "bf16_cl_compile" and "budget" in report["skipped"][0]["reason"]


def test_without_cuda_the_gpu_run_says_how_to_check_on_cpu():
    from echoweave.benchmarks.train_throughput import main

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(SystemExit, match="--device cpu --tiny"):
        main(["--settings", "fp32"])
