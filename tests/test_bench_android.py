"""The phone route without a phone: adb argument lists and the parsers of executor_runner /
LiteRT benchmark_model output (formats documented in tests/fixtures/bench/README.md)."""
from __future__ import annotations

from pathlib import Path

import pytest

from echoweave.benchmarks.android import (
    AdbTarget,
    benchmark_model_command,
    executor_runner_command,
    parse_benchmark_model,
    parse_executor_runner,
    run_android,
    setup_commands,
)
from echoweave.benchmarks.schema import validate_perf

FIX = Path(__file__).parent / "fixtures" / "bench"


def test_adb_commands_are_built_exactly():
    t = AdbTarget(adb="/opt/sdk/adb", serial="R58M123", remote_dir="/data/local/tmp/ew")
    assert t.getprop("ro.soc.model") == ["/opt/sdk/adb", "-s", "R58M123", "shell", "getprop", "ro.soc.model"]
    cmds = setup_commands(t, ["art/m_q8.pte"], ["bin/executor_runner"])
    assert cmds == [["/opt/sdk/adb", "-s", "R58M123", "shell", "mkdir", "-p", "/data/local/tmp/ew"],
                    ["/opt/sdk/adb", "-s", "R58M123", "push", "art/m_q8.pte", "/data/local/tmp/ew/m_q8.pte"],
                    ["/opt/sdk/adb", "-s", "R58M123", "push", "bin/executor_runner", "/data/local/tmp/ew/executor_runner"],
                    ["/opt/sdk/adb", "-s", "R58M123", "shell", "chmod", "+x", "/data/local/tmp/ew/executor_runner"]]
    assert executor_runner_command(t, "bin/executor_runner", "art/m_q8.pte", "embed_frame", 3, 20, 4) == [
        "/opt/sdk/adb", "-s", "R58M123", "shell", "/data/local/tmp/ew/executor_runner",
        "--model_path=/data/local/tmp/ew/m_q8.pte", "--method_name=embed_frame", "--num_executions=23",
        "--cpu_threads=4"]
    no_serial = AdbTarget()
    assert benchmark_model_command(no_serial, "benchmark_model", "a/m_q8.tflite", "forward", 5, 50, 2) == [
        "adb", "shell", "/data/local/tmp/echoweave/benchmark_model", "--graph=/data/local/tmp/echoweave/m_q8.tflite",
        "--signature_to_run_for=forward", "--num_threads=2", "--warmup_runs=5", "--num_runs=50",
        "--report_peak_memory_footprint=true"]


def test_parse_executor_runner_with_iterations_drops_warmup():
    p = parse_executor_runner((FIX / "executor_runner_iterations.txt").read_text(), warmup=1)
    assert p["ok"] and p["method"] == "embed_frame" and p["threads"] == 4
    assert p["load_ms"] == pytest.approx(93.412)
    assert p["iterations_ms"] == pytest.approx([45.381, 38.006, 37.102, 37.411, 38.027])
    assert p["samples_ms"] == pytest.approx([38.006, 37.102, 37.411, 38.027])
    assert p["first_ms"] == pytest.approx(45.381)
    assert p["executions"] == 5 and p["total_ms"] == pytest.approx(195.927)
    assert p["mean_ms"] == pytest.approx((38.006 + 37.102 + 37.411 + 38.027) / 4)


def test_parse_executor_runner_total_only_gives_the_mean_and_nothing_invented():
    p = parse_executor_runner((FIX / "executor_runner_total_only.txt").read_text(), warmup=2)
    assert p["ok"] and p["method"] == "forward"
    assert p["samples_ms"] == [] and p["first_ms"] is None and p["load_ms"] is None and p["threads"] is None
    assert p["mean_ms"] == pytest.approx(1203.312 / 8)


def test_parse_benchmark_model_with_percentiles():
    p = parse_benchmark_model((FIX / "benchmark_model_percentiles.txt").read_text())
    runs = p["runs"]
    assert runs["count"] == 25 and runs["avg"] == pytest.approx(41.4332) and runs["median"] == pytest.approx(41.18)
    assert runs["p95"] == pytest.approx(43.911) and runs["std"] == pytest.approx(0.903)
    assert p["warmup"]["count"] == 12 and p["warmup"]["first"] == pytest.approx(61.234)
    assert p["init_ms"] == pytest.approx(187.532) and p["first_inference_ms"] == pytest.approx(61.234)
    assert p["inference_avg_ms"] == pytest.approx(41.4332) and p["model_size_mb"] == pytest.approx(41.3221)
    assert p["memory_mb"]["delta"] == {"init": 58.4961, "overall": 71.2305}
    assert p["memory_mb"]["periodic_peak"] == pytest.approx(80.4648)
    assert (p["delegated_nodes"], p["total_nodes"]) == (73, 75)


def test_parse_benchmark_model_classic_layout_and_e_notation():
    p = parse_benchmark_model((FIX / "benchmark_model_classic.txt").read_text())
    assert p["runs"]["count"] == 50 and p["runs"]["max"] == pytest.approx(254.474)
    assert "median" not in p["runs"] and "p95" not in p["runs"]
    assert p["memory_mb"]["peak"] == {"init": 4.92969, "overall": 138.809}
    assert (p["delegated_nodes"], p["total_nodes"]) == (66, 66)


def test_run_android_replaying_captured_outputs_gives_valid_cells(tmp_path):
    """The whole device route on recorded tool outputs: the commands issued, the cells produced."""
    from echoweave.benchmarks.android import device_perf

    manifest = {"model_id": "tfw_r50", "frames": 4, "artifacts": [
        {"id": "executorch_xnnpack_int8", "format": "executorch", "precision": "int8",
         "files": [{"path": "m_q8.pte", "bytes": 40}, {"path": "m_q8.bpte", "bytes": 50}],
         "methods": {m: {"file": "m_q8.pte", "entry": m} for m in ("forward", "embed_frame", "classify_window")}},
        {"id": "litert_cpu_fp32", "format": "litert", "precision": "fp32", "files": [{"path": "m.tflite", "bytes": 9}],
         "methods": {m: {"file": "m.tflite", "entry": m} for m in ("forward", "embed_frame", "classify_window")}},
        {"id": "onnx_cpu_fp32", "format": "onnx", "precision": "fp32", "files": [], "methods": {}}]}
    issued = []
    et_log, bm_log = (FIX / "executor_runner_iterations.txt").read_text(), (FIX / "benchmark_model_classic.txt").read_text()

    def replay(cmd):
        issued.append(cmd)
        if "getprop" in cmd:
            return {"ro.product.model": "Pixel 8\n", "ro.soc.model": "Tensor G3\n"}.get(cmd[-1], "\n")
        if any(c.startswith("--model_path=") for c in cmd):
            return et_log
        if any(c.startswith("--graph=") for c in cmd):
            return bm_log
        return ""

    cells, skipped, device = run_android(tmp_path, manifest, AdbTarget(), "bin/executor_runner", "bin/benchmark_model",
                                         [4], ["window", "stream"], 1, 4, 30.0, runner=replay)
    assert device["model"] == "Pixel 8" and device["soc"] == "Tensor G3" and device["board"] is None
    assert [s["runtime"] for s in skipped] == ["onnx"]
    ids = [c["id"] for c in cells]
    assert ids == ["executorch-int8-t4-window", "executorch-int8-t4-stream", "litert-fp32-t4-window",
                   "litert-fp32-t4-stream"]
    et_stream = cells[1]
    # stream = embed_frame samples + the classify_window mean (both replayed from the same log here)
    head_mean = (38.006 + 37.102 + 37.411 + 38.027) / 4
    assert et_stream["samples_ms"][0] == pytest.approx(38.006 + head_mean, abs=1e-3)
    assert cells[0]["artifact_bytes"] == 40  # the .pte only, not the test bundle
    lite = cells[2]
    assert lite["latency_ms"]["p99"] is None and lite["latency_ms"]["mean"] == pytest.approx(249.684)
    assert lite["peak_rss_mb"] == pytest.approx(138.809) and lite["delegation"]["delegated_nodes"] == 66
    assert lite["realtime"]["verdict"] == "too slow" and lite["realtime"]["judged_on"].startswith("mean")
    methods = [c for c in issued if any(a.startswith("--method_name=") for a in c)]
    assert sorted(a for c in methods for a in c if a.startswith("--method_name=")) == [
        "--method_name=classify_window", "--method_name=embed_frame", "--method_name=forward"]
    cfg = {"runtimes": ["executorch", "litert"], "precisions": ["fp32", "int8"], "threads": [4],
           "modes": ["window", "stream"], "fps": 30.0, "seconds": 0.0, "warmup": 1, "input": "tool"}
    perf = validate_perf(device_perf(tmp_path, manifest, cells, skipped, device, cfg))
    assert perf["target"]["device"]["soc"] == "Tensor G3"
