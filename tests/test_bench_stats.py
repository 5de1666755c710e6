"""Benchmark arithmetic: latency statistics, real-time verdicts, compare ratios, the host's
theoretical peak from a captured /proc/cpuinfo, MAC counting, the perf.json schema."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from echoweave.benchmarks.compare import compare_perf, compare_table
from echoweave.benchmarks.hostinfo import parse_cpuinfo, peak_for_threads, peak_macs
from echoweave.benchmarks.schema import PerfSchemaError, validate_perf
from echoweave.benchmarks.soak import drift_summary
from echoweave.benchmarks.stats import budget_ms, latency_stats, realtime_verdict, trimmed_mean

FIX = Path(__file__).parent / "fixtures" / "bench"


def test_latency_stats_on_known_array():
    x = np.arange(1, 101, dtype=float)  # 1..100 ms
    s = latency_stats(x)
    assert s["n"] == 100 and s["min"] == 1 and s["max"] == 100
    assert s["mean"] == pytest.approx(50.5) and s["median"] == pytest.approx(50.5)
    assert s["p90"] == pytest.approx(90.1) and s["p99"] == pytest.approx(99.01)  # linear interpolation
    assert s["std"] == pytest.approx(np.std(x, ddof=1))
    assert s["trimmed_mean"] == pytest.approx(50.5)  # symmetric


def test_trimmed_mean_drops_outliers_like_scipy():
    x = [10.0] * 18 + [1000.0, 2000.0]
    assert trimmed_mean(x, 0.1) == pytest.approx(10.0)  # 2 dropped at each end
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    y = rng.lognormal(size=257)
    assert trimmed_mean(y, 0.1) == pytest.approx(scipy_stats.trim_mean(y, 0.1))


def test_latency_stats_rejects_bad_input():
    with pytest.raises(ValueError):
        latency_stats([])
    with pytest.raises(ValueError):
        latency_stats([1.0, float("nan")])


def test_realtime_budget_and_verdicts():
    assert budget_ms("stream", 30, 4) == pytest.approx(33.333, abs=1e-3)
    assert budget_ms("window", 30, 4) == pytest.approx(133.333, abs=1e-3)
    ok = realtime_verdict({"median": 20.0, "p99": 25.0, "mean": 21.0}, "stream", 30, 4)
    assert ok["verdict"] == "real-time"
    assert ok["headroom_p99"] == pytest.approx(33.3333 / 25, rel=1e-4)
    assert ok["sustainable_fps_median"] == pytest.approx(50.0)
    mid = realtime_verdict({"median": 30.0, "p99": 40.0, "mean": 31.0}, "stream", 30, 4)
    assert mid["verdict"] == "real-time at the median only"
    slow = realtime_verdict({"median": 150.0, "p99": 160.0, "mean": 150.0}, "window", 30, 4)
    assert slow["verdict"] == "too slow"
    assert slow["sustainable_fps_median"] == pytest.approx(4 * 1000 / 150)  # a window covers 4 frames
    assert slow["headroom_median"] == pytest.approx(133.333 / 150, rel=1e-4)
    # a device tool without p99: never "real-time", judged on the mean
    partial = realtime_verdict({"median": None, "p99": None, "mean": 10.0}, "stream", 30, 4)
    assert partial["verdict"] == "real-time at the median only" and partial["headroom_p99"] is None
    assert partial["judged_on"].startswith("mean")


def test_peak_from_captured_cpuinfo():
    cpu = parse_cpuinfo((FIX / "cpuinfo_xeon_2core.txt").read_text())
    assert cpu["physical_cores"] == 2 and cpu["logical_cpus"] == 2
    assert {"avx512f", "avx512_vnni", "amx_int8"} <= set(cpu["flags"])
    assert cpu["clock_ghz"] == pytest.approx(2.1) and cpu["clock_source"] == "cpu MHz"
    peak = peak_macs(cpu)
    assert peak["fp32_gmacs"] == pytest.approx(2 * 2 * 16 * 2.1)  # 134.4
    assert peak["int8_gmacs"] == pytest.approx(2 * 2 * 64 * 2.1)  # 537.6
    assert peak["int8_amx_gmacs"] == pytest.approx(2 * 1024 * 2.1)
    assert "avx512_vnni" in peak["explanation"]
    # docs/TOOLCHAIN_NOTES.md's 147 GMAC/s at the nominal 2.3 GHz
    assert peak_macs(cpu, clock_ghz=2.3)["fp32_gmacs"] == pytest.approx(147.2)
    assert peak_for_threads(peak, 1, "int8") == pytest.approx(peak["int8_gmacs"] / 2)
    assert peak_for_threads(peak, 8, "fp32") == pytest.approx(peak["fp32_gmacs"])  # capped at the cores


def test_peak_on_avx2_cpu_with_model_name_clock():
    text = ("processor\t: 0\nmodel name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz\nphysical id\t: 0\ncore id\t: 0\n"
            "cpu MHz\t: 800.0\nflags\t: fpu sse4_2 avx avx2 fma\n\n"
            "processor\t: 1\nmodel name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz\nphysical id\t: 0\ncore id\t: 0\n"
            "flags\t: fpu sse4_2 avx avx2 fma\n")
    cpu = parse_cpuinfo(text)
    assert cpu["physical_cores"] == 1 and cpu["logical_cpus"] == 2  # hyper-threads share FMA units
    assert cpu["clock_ghz"] == pytest.approx(3.2) and cpu["clock_source"] == "model name"
    peak = peak_macs(cpu)
    assert peak["fp32_gmacs"] == pytest.approx(1 * 2 * 8 * 3.2)
    assert peak["int8_gmacs"] == pytest.approx(1 * 2 * 16 * 3.2) and peak["int8_amx_gmacs"] is None


def test_macs_of_a_linear_layer_match_hand_count():
    torch = pytest.importorskip("torch")
    from echoweave.benchmarks.macs import count_macs

    torch.set_num_threads(1)
    assert count_macs(torch.nn.Linear(64, 32), (torch.randn(8, 64),)) == 8 * 64 * 32
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_macs(conv, (torch.randn(1, 3, 10, 10),)) == 8 * 10 * 10 * 3 * 3 * 3


def test_macs_of_the_tiny_model_split_into_methods():
    pytest.importorskip("torch")
    from echoweave.benchmarks.macs import method_macs
    from echoweave.train.models import ModelConfig, build_model

    model = build_model(ModelConfig(name="tfw", backbone="tiny", width=4, feature_dim=32, gru_hidden=16,
                                    gru_layers=1, input_size=32, num_classes=12, frames=4)).eval()
    macs = method_macs(model)
    assert macs["forward"] == model.frames * macs["embed_frame"] + macs["classify_window"]
    assert macs["per_frame"] == macs["embed_frame"] + macs["classify_window"]
    # the head: 4 woven steps of an unrolled 1-layer GRU (3 gates, input 32 -> 16, hidden 16) + Linear 16->12
    feat, hidden, k = 32, 16, 12
    assert macs["classify_window"] == 4 * 3 * (feat * hidden + hidden * hidden) + hidden * k


def _perf(cells):
    host = {"cpu_model": "x", "os": "Linux", "python": "3.11", "versions": {}, "git_commit": None, "peak": {},
            "physical_cores": 2, "logical_cpus": 2, "isa_flags": [], "clock_ghz": 2.1,
            "load_average_start": [1.0, 1.0, 1.0], "load_average_end": None}
    return {"schema_version": 1, "kind": "echoweave-perf", "model_id": "m", "artifact_dir": "a", "created_utc": "t",
            "target": {"kind": "host", "device": None}, "host": host,
            "config": {"runtimes": [], "precisions": [], "threads": [1], "modes": ["window"], "fps": 30.0,
                       "seconds": 1.0, "warmup": 1, "input": "x"},
            "macs": None, "gemm": [], "eager": {"available": False, "reason": "", "weights": None}, "cells": cells,
            "skipped": [], "notes": []}


def _cell(runtime, median, mode="window", threads=1, load=10.0):
    stats = latency_stats([median * 0.9, median, median * 1.1])
    return {"id": f"{runtime}-fp32-t{threads}-{mode}", "runtime": runtime, "runtime_version": "1", "artifact": "a",
            "precision": "fp32", "threads": threads, "threads_control": "", "mode": mode,
            "load_ms": {"median": load, "samples": [load]}, "first_inference_ms": 1.0, "warmup": 1,
            "latency_ms": stats, "samples_ms": [median * 0.9, median, median * 1.1], "peak_rss_mb": None,
            "rss_load_delta_mb": None, "artifact_bytes": None, "delegation": None,
            "realtime": realtime_verdict(stats, mode, 30, 4), "speedup_vs_eager": None, "macs_per_call": None,
            "achieved_gmacs": None, "fraction_of_peak": None, "fraction_of_gemm": None, "notes": []}


def test_compare_ratios_match_cells_by_key():
    old = validate_perf(_perf([_cell("onnxruntime", 10.0), _cell("litert", 20.0)]))
    new = validate_perf(_perf([_cell("onnxruntime", 5.0, load=20.0), _cell("executorch", 7.0)]))
    rows = {r["id"]: r for r in compare_perf(old, new)}
    ort = rows["onnxruntime-fp32-t1-window"]
    assert ort["ratios"]["median"] == pytest.approx(0.5) and ort["ratios"]["p99"] == pytest.approx(0.5)
    assert ort["load_ratio"] == pytest.approx(2.0)
    assert rows["litert-fp32-t1-window"]["only_in"] == "old"
    assert rows["executorch-fp32-t1-window"]["only_in"] == "new"
    table = compare_table(list(rows.values()), old, new)
    assert "0.500" in table and "only in the old run" in table


def test_schema_rejects_broken_perf():
    good = _perf([_cell("onnxruntime", 10.0)])
    validate_perf(good)
    for mutate, msg in ((lambda p: p.pop("host"), "missing 'host'"),
                        (lambda p: p["cells"][0].update(mode="burst"), "mode"),
                        (lambda p: p["cells"][0]["latency_ms"].update(n="3"), "latency_ms.n"),
                        (lambda p: p["cells"][0]["samples_ms"].append(1.0), "samples"),
                        (lambda p: p["cells"].append(copy.deepcopy(p["cells"][0])), "duplicate"),
                        (lambda p: p.update(schema_version=99), "schema_version")):
        bad = copy.deepcopy(good)
        mutate(bad)
        with pytest.raises(PerfSchemaError, match=msg):
            validate_perf(bad)


def test_drift_summary_sees_a_trend_and_rss_growth():
    t = np.linspace(0, 600, 6001)  # 10 minutes
    lat = 10.0 + 0.5 * t / 60.0  # +0.5 ms per minute
    rss_t = np.arange(0, 601, 1.0)
    rss = 500 + 2.0 * rss_t / 60.0  # +2 MB per minute
    d = drift_summary(t, lat, rss_t, rss, 10.0)
    assert d["trend_ms_per_min"] == pytest.approx(0.5, rel=1e-6)
    assert d["window_s"] == 60.0
    assert d["median_first_ms"] == pytest.approx(10.25, abs=0.01) and d["median_last_ms"] == pytest.approx(14.75, abs=0.01)
    assert d["rss_growth_mb"] == pytest.approx(20.0) and d["rss_trend_mb_per_min"] == pytest.approx(2.0)


def test_executorch_cells_only_at_the_process_pool_size():
    pytest.importorskip("executorch")
    from echoweave.benchmarks.harness import BenchConfig, plan_cells
    from echoweave.benchmarks.threads import executorch_pool_size

    pool = executorch_pool_size()
    art = {"id": "executorch_xnnpack_fp32", "format": "executorch", "precision": "fp32", "files": [],
           "methods": {}}
    cells, skipped = plan_cells({"artifacts": [art]}, BenchConfig("x", runtimes=["executorch"],
                                                                  threads=[pool, pool + 1], modes=["window"]))
    assert [(c.runtime, c.threads) for c in cells] == [("executorch", pool)]
    assert skipped[0]["threads"] == pool + 1 and "process-wide" in skipped[0]["reason"]
